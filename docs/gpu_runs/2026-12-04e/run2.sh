#!/bin/bash
# Device call 2 of 2026-12-04e (H200): short contexts at batch 1, where every format ran at 0.13-0.42x fp16 SDPA
# (call 1): fewer programs per multiprocessor side by side with the defaults, and each launch's time by the profiler.
source docs/gpu_runs/2026-12-04e/setup.sh
python3 docs/gpu_runs/2026-12-04e/kernel_times.py fp16-kernel,kivi2,million2,kvquant3 4096 2>&1 | tee $OUT/kernel_times.log
timeout 200 python3 -c "$KVTOOL" bench --part attention --contexts 1024,4096,8192 --batches 1 \
  --formats fp16-kernel,kivi4,kivi2,duo50+kivi2 --out $OUT/mma \
  --launches auto,mma:32/4/3/1,mma:32/4/3/2,mma:32/4/3/4,mma:32/2/2/2 2>&1 | tee $OUT/mma.log
timeout 100 python3 -c "$KVTOOL" bench --part attention --contexts 1024,4096,8192 --batches 1 \
  --formats million2,kvquant3,qaq4 --out $OUT/other \
  --launches auto,adc:16/2/1/2,adc:16/2/1/4,generic:16/4/1/2,generic:16/4/1/4,bitplanes:32/2/1/2 2>&1 | tee $OUT/other.log
date -u
