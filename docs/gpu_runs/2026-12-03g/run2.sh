#!/bin/bash
# Device call 2 of 2026-12-03's seventh session (H200): decode attention of every format at 4K, 32K and 128K, batch 1
# and 16, against fp16 SDPA in the same process, on 2101f12 (one merge block per layer since 59d7f7e).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 -c "$KVTOOL" bench --part attention --contexts 4096,32768,131072 --batches 1,16 \
  --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
