#!/bin/bash
# Device call 1 of the ninth session of 2026-12-02 (H100, nvidia-h100-x1): the check over every format, then decode
# attention of every format at 32K and 128K, batch 1 and 16, against fp16 SDPA in the same process.
set -x
date -u
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
KVTOOL='import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()'
timeout 560 python3 -c "$KVTOOL" bench --part check --part attention --contexts 32768,131072 --batches 1,16 \
  --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
