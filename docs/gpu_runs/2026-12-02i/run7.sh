#!/bin/bash
# Device call 7 of the ninth session of 2026-12-02 (H200): call 6 timed duo50+kivi2 at 4,920.86 ms per step at
# 10,461,184 tokens (1 untimed, 1 timed); the same context timed with 1, 1 and 8 steps.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 280 python3 docs/gpu_runs/2026-12-02i/longest_steps.py 10461184 1,1,8 2>&1 | grep -v Warning | tee $OUT/longest_steps.log
date -u
