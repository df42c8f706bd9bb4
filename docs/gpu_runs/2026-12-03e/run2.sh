#!/bin/bash
# Device call 2 of 2026-12-03's fifth session (H200): batch-1 latency with flushes of held tokens run ahead of their
# steps (the working tree) against inside eager steps, in one process; then where kivi2's steps go now.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 420 python3 docs/gpu_runs/2026-12-03e/flush_ahead_ab.py kivi2,kivi4,duo50+kivi2,million2 8192,32768 2>&1 \
  | tee $OUT/flush_ahead_ab.log
timeout 130 python3 docs/gpu_runs/2026-12-02b/graph_step_times.py kivi2,million2,duo50+kivi2 32768 2>&1 \
  | tee $OUT/graph_step_times.log
date -u
