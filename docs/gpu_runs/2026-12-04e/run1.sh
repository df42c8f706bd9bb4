#!/bin/bash
# Device call 1 of 2026-12-04e (H200): every format's fused kernels checked against the reference path, then one
# layer's decode attention of every format at 4K, 32K and 128K, batch 1 and 16, against fp16 SDPA in one process.
source docs/gpu_runs/2026-12-04e/setup.sh
timeout 560 python3 -c "$KVTOOL" bench --part check --part attention --contexts 4096,32768,131072 --batches 1,16 \
  --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
