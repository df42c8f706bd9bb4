#!/bin/bash
# Device call 5 of 2026-12-03 (H200): KVQuant's codes and value ranges loaded a tile ahead in the generic loop
# (decode._nuq_loads) against the kernel of f505ca4 (.g4/base.py): attention on the same filled caches, then
# batch-1 latency at 32K.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 240 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto kvquant3,kvquant2 1x32768,1x131072,16x32768 2>&1 \
  | tee $OUT/generic_sweep.log
timeout 200 python3 docs/gpu_runs/2026-12-03/latency_ab.py kvquant3 32768 2>&1 | tee $OUT/latency_ab.log
date -u
