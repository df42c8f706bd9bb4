#!/bin/bash
# Device call 5 of 2026-12-04 (H200): some graphs' replays take ~0.6 ms more than their kernels (call 4: fp16-kernel
# 7.87 ms a replay against 7.24 of kernels, after 300 steps, second in its process): where the GPU waits.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 300 python3 docs/gpu_runs/2026-12-04/replay_gaps.py kivi2,fp16-kernel,fp16-kernel,kivi2 8192 300 2>&1 \
  | tee $OUT/replay_gaps.log
date -u
