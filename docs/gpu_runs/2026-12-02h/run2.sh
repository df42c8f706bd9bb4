#!/bin/bash
# Device call 2 of the eighth session of 2026-12-02: after minmax_quantize divides by a tensor (exact on CUDA too),
# kivi4's twins store by store, then `kvtool bench --part check` over every format.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02g/twins.py kivi4 2 5000 2>&1 | tee $OUT/twins_kivi4.log
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --out $OUT/check 2>&1 | tee $OUT/check_all.log
