#!/bin/bash
# Device call 2 of the sixth session of 2026-12-02: QAQ's generic tiles reading a plane's row as D/8 bytes and the
# per-token ranges, widths and outliers laid out vector-major; attention, graphs in a model, latency.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
bench() { python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench "$@"; }
bench --part check --part attention --formats qaq4,kvquant3 --contexts 32768,131072 --batches 1 \
  --out $OUT/attention 2>&1 | tee $OUT/attention_qaq.log
python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py qaq 2>&1 | grep -v Warning | tee $OUT/graphs_in_model_qaq.log
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 8192,32768 2>&1 | tee $OUT/latency_rows_qaq4.log
python3 docs/gpu_runs/2026-12-02b/graph_step_times.py qaq4 32768 2>&1 | tee $OUT/graph_step_times_qaq4_32k.log
