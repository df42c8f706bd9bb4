#!/bin/bash
# Device call 3 of 2026-12-03's third session (H200): more launch shapes for the adc path with values by one tl.dot
# per tile (the working tree) against the kernel of e900844 (.g4/base.py).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 330 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py \
  adc:16/2/1/16,adc:16/2/1/32,adc:16/1/1/32,adc:32/2/1/16,adc:16/4/1/16 million2,million4 \
  1x32768,1x131072,16x32768 2>&1 | tee $OUT/adc_sweep.log
date -u
