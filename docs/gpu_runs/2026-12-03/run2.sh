#!/bin/bash
# Device call 2 of 2026-12-03 (H200): KVQuant's levels picked in registers (decode._small_table) against
# the kernel of f505ca4 (.g4/base.py): attention on the same filled caches, then batch-1 latency at 32K.
# The variant timed as "now": levels_gathered.patch on f505ca4 (not kept).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 300 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,generic:32/4/1/8,generic:16/4/1/12 kvquant3,kvquant2 \
  1x32768,1x131072,16x32768 2>&1 | tee $OUT/generic_sweep.log
timeout 240 python3 docs/gpu_runs/2026-12-03/latency_ab.py kvquant3,kvquant2 32768 2>&1 | tee $OUT/latency_ab.log
date -u
