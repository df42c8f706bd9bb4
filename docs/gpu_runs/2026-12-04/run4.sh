#!/bin/bash
# Device call 4 of 2026-12-04 (H200): kivi2's replays took 7.34 ms at steps 8-28 (call 2) but a median 7.94 over steps
# 256-511 (call 3), fp16-kernel's 7.22 and 7.27: the median replay per 32 steps, then the kernels of replays late in
# a span.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 150 python3 docs/gpu_runs/2026-12-04/flush_step_times.py kivi2,fp16-kernel 8192 512 across 2>&1 \
  | tee $OUT/replays_by_step.log
timeout 200 python3 docs/gpu_runs/2026-12-04/replay_kernels.py kivi2,fp16-kernel 8192 300 2>&1 \
  | tee $OUT/replay_kernels_late.log
date -u
