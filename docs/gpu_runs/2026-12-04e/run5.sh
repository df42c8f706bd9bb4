#!/bin/bash
# Device call 5 of 2026-12-04e (H200): split_sweep.py: at least 4-32 tiles per split for the layouts without a fast
# path (KVQuant and CQ: generic; QAQ: bitplanes), batch 1 from 1K to 128K and 16 x 4K.
source docs/gpu_runs/2026-12-04e/setup.sh
V=auto
for n in 4 8 16 32; do V=$V,generic.min_split_tiles=$n+bitplanes.min_split_tiles=$n; done
timeout 480 python3 docs/gpu_runs/2026-12-04e/split_sweep.py $V kvquant3,cq2,qaq4 \
  1x1024,1x4096,1x8192,1x32768,1x131072,16x4096 2>&1 | tee $OUT/split_sweep.log
date -u
