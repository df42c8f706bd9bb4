#!/bin/bash
# Device call 5 of 2026-12-04b (H200): one append past CUDA's 65,535 cap on a grid's second axis, with the quantize
# kernels' tokens on the first axis (working tree) and as b90107e launched them (.g4/quantize_b90107e.py, `git show
# b90107e:kvtool/runtime/kernels/quantize.py`): the bench's check at 70,000 and 1,100,000 tokens, and 4,096-token
# encodes timed both ways.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 420 python3 docs/gpu_runs/2026-12-04b/long_appends.py .g4/quantize_b90107e.py 2>&1 | grep -v Warn \
  | tee $OUT/long_appends.log
date -u
