#!/bin/bash
# Device call 4 of the eighth session of 2026-12-02: QAQ's batch-1 latency with its encode kernels, against HF
# DynamicCache at 8K and 32K, and a replayed 32K step's time.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 8192,32768 2>&1 | tee $OUT/latency_rows_qaq4.log
python3 docs/gpu_runs/2026-12-02b/graph_step_times.py qaq4 32768 2>&1 | tee $OUT/graph_step_times_qaq4_32k.log
