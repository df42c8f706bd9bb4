#!/bin/bash
# Device call 4 of 2026-12-03's fifth session (H200): batch-1 latency with a graphed step's positions and rows made
# once and shared by its layers (the working tree) against made per use, in one process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 540 python3 docs/gpu_runs/2026-12-03e/shared_positions_ab.py fp16-kernel,kivi2,duo50+kivi2,kvquant3 \
  8192,32768 2>&1 | tee $OUT/shared_positions_ab.log
date -u
