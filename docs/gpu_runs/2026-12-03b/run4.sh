#!/bin/bash
# Device call 4 of 2026-12-03's second session (H200): KVQuant's outliers per token and head (head_probe.py).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 400 python3 docs/gpu_runs/2026-12-03b/head_probe.py 2>&1 | tee $OUT/head_probe.log
date -u
