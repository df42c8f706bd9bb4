#!/bin/bash
# Device call 6 of the seventh session of 2026-12-02: QAQ's tiles with joined codes at 32 positions (their own launch,
# `bitplanes`): checked against the reference path at head_dim 128 and 64, timed against the kernel of 7a2ddd8
# (.g4/base.py) in the same process, then in a model (graphs) and its batch-1 latency.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02g/check_head_dims.py 2>&1 | tee $OUT/check_head_dims.log
python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,bitplanes:32/2/1,bitplanes:64/4/1 qaq4 \
  1x32768,1x131072,16x32768 2>&1 | tee $OUT/sweep.log
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 8192,32768 2>&1 | tee $OUT/latency_rows_qaq4.log
python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py qaq 2>&1 | grep -v Warning | tee $OUT/graphs_in_model_qaq.log
