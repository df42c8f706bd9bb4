#!/bin/bash
# Device call 6 of 2026-12-04e (H200): after the generic launch's min_split_tiles = 4, the check and decode attention
# of the formats without a fast path at batch 1, 1K and 4K.
source docs/gpu_runs/2026-12-04e/setup.sh
timeout 200 python3 -c "$KVTOOL" bench --part check --part attention --contexts 1024,4096 --batches 1 \
  --formats kvquant3,kvquant2,kvquant3-head,cq4,cq2,qaq4 --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
