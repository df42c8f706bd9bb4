#!/bin/bash
# Device call 7 of the seventh session of 2026-12-02: the committed QAQ launch (bitplanes: 32 positions, 2 warps):
# check and attention through `kvtool bench`, batch-1 latency against HF DynamicCache at 8K and 32K, and where a
# 32K step's time goes.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --part attention --formats qaq4 --contexts 32768,131072 --batches 1,16 --out $OUT/attention 2>&1 \
  | tee $OUT/attention_qaq.log
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 8192,32768 2>&1 | tee $OUT/latency_rows_qaq4.log
python3 docs/gpu_runs/2026-12-02b/graph_step_times.py qaq4 32768 2>&1 | tee $OUT/graph_step_times_qaq4_32k.log
