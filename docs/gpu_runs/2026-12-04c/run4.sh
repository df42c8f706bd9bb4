#!/bin/bash
# Device call 4 of 2026-12-04c (H200): the graphs' debug dumps, first three against later (toy_dumps.py).
set -x
export PYTHONPATH=$PWD/docs/gpu_runs  # toy_graph_times.py, moved there after calls 1-4
date -u
timeout 120 python3 docs/gpu_runs/2026-12-04c/toy_dumps.py 2>&1 | tee $OUT/toy_dumps.log
date -u
