#!/bin/bash
# Device call 1 of 2026-12-04c (H200): the first-three-graphs effect against the eager work before it (toy_warmups.py).
set -x
export PYTHONPATH=$PWD/docs/gpu_runs  # toy_graph_times.py, moved there after calls 1-4
date -u
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
T=docs/gpu_runs/2026-12-04c/toy_warmups.py
for n in 0 1 16 128 1024 1700 6800; do timeout 60 python3 $T $n 0 before; done 2>&1 | tee -a $OUT/toy_warmups.log
for s in 1 64; do timeout 60 python3 $T 1700 $s before; done 2>&1 | tee -a $OUT/toy_warmups.log
for n in 0 1 1700; do timeout 60 python3 $T $n 0 between; done 2>&1 | tee -a $OUT/toy_warmups.log
date -u
