#!/bin/bash
# Device call 6 of 2026-12-04 (H200): replays of a process's fourth graph onwards seemed slower (calls 3-5): the
# median replay per 32 steps over 1,100 steps (five graphs), fp16-kernel alone, then after kivi2's 300 steps.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 150 python3 docs/gpu_runs/2026-12-04/flush_step_times.py fp16-kernel 8192 1100 across 2>&1 \
  | tee $OUT/fp16_alone.log
timeout 200 python3 docs/gpu_runs/2026-12-04/flush_step_times.py kivi2,fp16-kernel 8192 1100 across 2>&1 \
  | tee $OUT/kivi2_then_fp16.log
date -u
