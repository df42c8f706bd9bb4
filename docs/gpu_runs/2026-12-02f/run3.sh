#!/bin/bash
# Device call 3 of the sixth session of 2026-12-02: batch-1 latency at 32K of the formats not timed there before.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,kivi4,million2,million4,cq2,kvquant2" 32768 2>&1 \
  | tee $OUT/latency_rows_32k.log
