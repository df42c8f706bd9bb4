#!/bin/bash
# Device call 1 of 2026-12-03's second session (H200): CQ's code bytes loaded a tile ahead in the generic loop
# (docs/gpu_runs/2026-12-03/cq_codes_ahead.patch applied) against the kernel of 0a1e433 (.g4/base.py): attention on
# the same filled caches, then batch-1 latency at 32K.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 260 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto cq4,cq2 1x32768,1x131072,16x32768 2>&1 \
  | tee $OUT/generic_sweep.log
timeout 280 python3 docs/gpu_runs/2026-12-03/latency_ab.py cq4 32768 2>&1 | tee $OUT/latency_ab.log
date -u
