#!/bin/bash
# Device call 1 of the eighth session of 2026-12-02: kivi4's twins (quantize kernels vs PyTorch encode) store by store,
# then three fused steps; kivi2 beside it as the control.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02g/twins.py kivi4 2 5000 2>&1 | tee $OUT/twins_kivi4.log
python3 docs/gpu_runs/2026-12-02g/twins.py kivi2 2 5000 2>&1 | tee $OUT/twins_kivi2.log
python3 docs/gpu_runs/2026-12-02g/twins.py kivi4 16 16384 2>&1 | tee $OUT/twins_kivi4_16.log
