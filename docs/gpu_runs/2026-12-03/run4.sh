#!/bin/bash
# Device call 4 of 2026-12-03 (H200): the generic launch with pipelined stages (16-position tiles, 4 warps, 2 or 3
# stages), which now fit two programs per multiprocessor (45,056 / 77,824 B of shared memory, sm_90 compile), beside
# the default one stage; committed kernel (f505ca4).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 450 python3 -c "$KVTOOL" bench --part attention --formats kvquant3,kvquant2,cq4 --contexts 32768,131072 \
  --batches 1 --launches auto,generic:16/4/2/8,generic:16/4/3/8 --out $OUT/attention 2>&1 | grep -v Warning \
  | tee $OUT/attention.log
date -u
