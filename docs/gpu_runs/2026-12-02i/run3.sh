#!/bin/bash
# Device call 3 of the ninth session of 2026-12-02 (H200 this time, nvidia-h200): batch-1 latency of every format at
# 8K and 32K against HF DynamicCache, StaticCache and quanto int4/int2 in the same process (`--part latency`).
set -x
date -u
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
KVTOOL='import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()'
timeout 560 python3 -c "$KVTOOL" bench --part latency \
  --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
