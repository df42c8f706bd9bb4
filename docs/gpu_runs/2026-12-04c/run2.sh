#!/bin/bash
# Device call 2 of 2026-12-04c (H200): toy_warmups.py, the eager count's threshold between 1 and 16; replays on a side
# stream; a pause after the eager adds; four kinds of eager kernels.
set -x
export PYTHONPATH=$PWD/docs/gpu_runs  # toy_graph_times.py, moved there after calls 1-4
date -u
T=docs/gpu_runs/2026-12-04c/toy_warmups.py
for n in 2 3 4 8; do timeout 60 python3 $T $n 0 before; done 2>&1 | tee -a $OUT/toy_warmups.log
TOY_REPLAY=side timeout 60 python3 $T 1700 0 before 2>&1 | tee -a $OUT/toy_warmups.log
TOY_SLEEP=2 timeout 60 python3 $T 1700 0 before 2>&1 | tee -a $OUT/toy_warmups.log
for n in 4 16; do TOY_EAGER=kernels timeout 60 python3 $T $n 0 before; done 2>&1 | tee -a $OUT/toy_warmups.log
date -u
