#!/bin/bash
# Device call 1 of the ninth session of 2026-12-02 (H100, nvidia-h100-x1): the check over every format, then decode
# attention of every format at 32K and 128K, batch 1 and 16, against fp16 SDPA in the same process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 560 python3 -c "$KVTOOL" bench --part check --part attention --contexts 32768,131072 --batches 1,16 \
  --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
