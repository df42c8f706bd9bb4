#!/bin/bash
# Device call 3 of 2026-12-04e (H200): short_sweep.py: the split policies at 1K-6K (batch 1) and 16 x 4K, and
# MILLION's codebooks decoded into generic tiles against its ADC tiles at 8K-128K.
source docs/gpu_runs/2026-12-04e/setup.sh
S=docs/gpu_runs/2026-12-04e/short_sweep.py
timeout 330 python3 $S old,min64,min32,two fp16-kernel,kivi4,kivi2,duo50+kivi2,million2 \
  1x1024,1x2048,1x3072,1x4096,1x6144,16x4096 2>&1 | tee $OUT/short_sweep.log
timeout 180 python3 $S old,generic,generic@adc:16/4/1/8,generic@adc:32/4/1/8 million2,million4 \
  1x8192,1x32768,1x131072,16x32768 2>&1 | tee $OUT/adc_generic.log
date -u
