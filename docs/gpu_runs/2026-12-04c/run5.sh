#!/bin/bash
# Device call 5 of 2026-12-04c (H200): the toy scripts after their timer and capture moved to toy_graph_times.py,
# once each, to check that they still run and print what they printed.
set -x
export PYTHONPATH=$PWD/docs/gpu_runs
date -u
timeout 60 python3 docs/gpu_runs/2026-12-04c/toy_warmups.py 1700 0 between 2>&1 | tee -a $OUT/toys.log
timeout 60 python3 docs/gpu_runs/2026-12-04c/toy_update.py 2>&1 | tee -a $OUT/toys.log
timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add 2>&1 | tee -a $OUT/toys.log
date -u
