#!/bin/bash
# Device call 5 of the eighth session of 2026-12-02: KIVI's fast launches with registers per thread capped (ptxas
# .maxnreg), so that more programs fit per multiprocessor: checked, then timed beside the uncapped launch.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02h/register_sweep.py \
  auto,mma:32/4/3/8/96,mma:32/4/3/8/80,mma:32/4/3/12/80,mma:32/4/3/8/64,mma_batched:16/1/3/32/128 \
  kivi2,kivi4 1x131072,1x32768,16x32768 2>&1 | tee $OUT/register_sweep.log
