#!/bin/bash
# Device call 2 of 2026-12-03's third session (H200): the adc path with values by one tl.dot per tile (the working
# tree) against the kernel of e900844 (.g4/base.py), launch shapes swept; then gather_probe.py's 1-d tl.gather
# variants, which Triton keeps in shared memory.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 330 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py \
  auto,adc:16/2/1/16,adc:32/4/1/8,adc:32/4/1/4,adc:64/4/1/4 million2,million4 \
  1x32768,1x131072,16x32768 2>&1 | tee $OUT/adc_sweep.log
timeout 120 python3 docs/gpu_runs/2026-12-03c/gather_probe.py 131072 \
  "l1,smem64 G8 N64 w4,smem64 G4 N32 w2,smem1d G8 N64 w4" 2>&1 | tee $OUT/gather_probe.log
date -u
