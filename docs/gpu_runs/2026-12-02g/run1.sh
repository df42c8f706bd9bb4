#!/bin/bash
# Device call 1 of the seventh session of 2026-12-02: QAQ's and KVQuant's generic tiles with a code's eight elements
# joined from their bits (not broadcast along a third axis); base = the kernel of 7a2ddd8 in .g4/base.py. Launch
# shapes swept, then QAQ's batch-1 latency at 32K.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,generic:32/4/1,generic:32/2/1,generic:16/2/1 qaq4,kvquant3 \
  1x32768,1x131072,16x32768 2>&1 | tee $OUT/generic_sweep.log
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 32768 2>&1 | tee $OUT/latency_rows_qaq4.log
