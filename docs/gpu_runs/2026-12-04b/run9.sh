#!/bin/bash
# Device call 9 of 2026-12-04b (H200): the toy of call 8 (six graphs of 1,700 in-place adds: all alike) with
# allocations inside the graph, a Triton kernel, and both; each kind first in a process, then all in one.
source docs/gpu_runs/2026-12-02i/setup.sh
for kinds in alloc triton mixed add,alloc,triton,mixed; do
  timeout 100 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py $kinds 2>&1 | tee -a $OUT/toy_graphs.log
done
date -u
