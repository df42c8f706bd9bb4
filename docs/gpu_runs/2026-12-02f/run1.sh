#!/bin/bash
# Device call 1 of the sixth session of 2026-12-02: QAQ's steps in CUDA graphs (correctness in a model, latency
# against HF DynamicCache, where a step's time goes), and QAQ's attention with one head group per layer.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python3 -c "import torch, triton, transformers; print(torch.__version__, triton.__version__, transformers.__version__)"
python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py qaq 2>&1 | grep -v Warning | tee $OUT/graphs_in_model_qaq.log
python3 docs/gpu_runs/2026-12-02b/graph_step_times.py qaq4 8192 2>&1 | tee $OUT/graph_step_times_qaq4.log
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 8192,32768 2>&1 | tee $OUT/latency_rows_qaq4.log
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --part attention --formats qaq4 --contexts 32768,131072 --batches 1 --out $OUT/attention 2>&1 | tee $OUT/attention_qaq.log
