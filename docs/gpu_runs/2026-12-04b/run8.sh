#!/bin/bash
# Device call 8 of 2026-12-04b (H200): the first-three-graphs effect in a toy of plain PyTorch (toy_graphs.py in its
# first form: in-place adds only, no argument).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 100 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py 2>&1 | tee $OUT/toy_graphs.log
timeout 100 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py 2>&1 | tee -a $OUT/toy_graphs.log
date -u
