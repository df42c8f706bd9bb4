#!/bin/bash
# Device call 2 of 2026-12-03's second session (H200): KVQuant's encode of one appended token, base against one
# reduction per outlier, with 4 warps and 1; then what a replayed batch-1 step at 32K runs on the GPU, by kernel.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 150 python3 docs/gpu_runs/2026-12-03b/encode_ab.py 1,16 2>&1 | tee $OUT/encode_ab.log
timeout 400 python3 docs/gpu_runs/2026-12-03b/step_kernels.py fp16-kernel,kvquant3,kivi2 32768 2>&1 \
  | tee $OUT/step_kernels.log
date -u
