#!/bin/bash
# Device call 2 of the ninth session of 2026-12-02 (H100, nvidia-h100-x1): decode throughput at the largest batch (8K, 32K) and batch-1
# latency against HF caches for the KIVI family, in one process.
set -x
date -u
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
KVTOOL='import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()'
timeout 560 python3 -c "$KVTOOL" bench --part e2e --formats fp16-kernel,kivi4,kivi2,duo50+kivi2 \
  --out $OUT/e2e 2>&1 | tee $OUT/e2e.log
date -u
