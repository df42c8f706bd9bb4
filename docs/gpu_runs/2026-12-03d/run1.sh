#!/bin/bash
# Device call 1 of 2026-12-03's fourth session (H200): decode attention of every format at 4K, 32K and 128K, batch 1
# and 16, against fp16 SDPA in the same process, with the code of the session's start (f02aeaf).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 -c "$KVTOOL" bench --part attention --contexts 4096,32768,131072 --batches 1,16 \
  --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
