#!/bin/bash
# Device call 2 of 2026-12-03's sixth session (H200): KVQuant's and QAQ's outliers scattered into a scratch tile a
# tile ahead and read back whole (one barrier per tile) against one compare-and-select per element and slot
# (.g4/base.py = 8679e15's decode.py), on the same filled caches.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,generic:32/4/1/8 \
  kvquant3,kvquant3-head,kvquant2,qaq4 1x32768,1x131072,16x32768 2>&1 | tee $OUT/sweep.log
date -u
