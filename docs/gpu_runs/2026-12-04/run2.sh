#!/bin/bash
# Device call 2 of 2026-12-04 (H200): the kernels of a replayed batch-1 decode step, fp16 through kvtool's cache
# against KIVI and MILLION, at 8K and 32K: where kivi2's 1.08x over fp16-kernel at 8K goes.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 400 python3 docs/gpu_runs/2026-12-04/replay_kernels.py fp16-kernel,kivi2,kivi4,million2 8192,32768 2>&1 \
  | tee $OUT/replay_kernels.log
date -u
