#!/bin/bash
# Device call 14 of 2026-12-04b (H200): call 13: with no eager run of the kernels before the captures all six toy
# graphs replay fast. That eager run on a side stream instead (TOY_WARMUP_STREAM=side), and on the current one.
source docs/gpu_runs/2026-12-02i/setup.sh
TOY_WARMUP_STREAM=side timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add,alloc 2>&1 \
  | tee -a $OUT/toy_graphs.log
timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add 2>&1 \
  | tee -a $OUT/toy_graphs.log
date -u
