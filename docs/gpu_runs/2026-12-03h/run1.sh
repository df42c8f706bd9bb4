#!/bin/bash
# Device call 1 of 2026-12-03's eighth session (H200): batch-1 latency with a captured step's replays running across
# flushes of held tokens (the working tree) against replays that end at each flush, in one process; then where the
# steps go now.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 430 python3 docs/gpu_runs/2026-12-03h/span_flushes_ab.py kivi2,kivi4,duo50+kivi2,million2 8192,32768 2>&1 \
  | tee $OUT/span_flushes_ab.log
timeout 100 python3 docs/gpu_runs/2026-12-02b/graph_step_times.py kivi2,duo50+kivi2 32768 2>&1 \
  | tee $OUT/graph_step_times.log
date -u
