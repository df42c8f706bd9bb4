#!/bin/bash
# Device call 1 of 2026-12-03's fifth session (H200): KIVI's fast tiles with the key scales folded into the query
# (keys_folded.patch: the codes go from shared memory straight into the MMA operand layout) against the committed
# kernel (.g4/base.py = 3ea0044's decode.py), on the same filled caches.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,mma:32/2/3/16,mma:32/1/3/32 \
  kivi2,kivi4,duo50+kivi2 1x32768,1x131072,16x32768 2>&1 | tee $OUT/sweep.log
date -u
