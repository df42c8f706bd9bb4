#!/bin/bash
# Device call 3 of the eighth session of 2026-12-02: QAQ's encode kernels (kernels/quantize.py: bitplane_quantize):
# qaq4's twins store by store (kernels vs PyTorch encode), the check over every format, QAQ in a model.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02g/twins.py qaq4 2 5000 2>&1 | tee $OUT/twins_qaq4.log
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --out $OUT/check 2>&1 | tee $OUT/check_all.log
python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py qaq 2>&1 | grep -v Warning | tee $OUT/graphs_in_model_qaq.log
