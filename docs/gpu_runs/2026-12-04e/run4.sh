#!/bin/bash
# Device call 4 of 2026-12-04e (H200): after `Launch.fast_min_tiles` (mma: 32), the check at bench.CHECK_SHAPES (now
# with 1 x 3000) and every format's decode attention at batch 1, 1K-128K.
source docs/gpu_runs/2026-12-04e/setup.sh
timeout 540 python3 -c "$KVTOOL" bench --part check --part attention --contexts 1024,2048,4096,8192,32768,131072 \
  --batches 1 --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
