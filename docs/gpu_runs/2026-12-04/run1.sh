#!/bin/bash
# Device call 1 of 2026-12-04 (H200): which decode steps compile a Triton kernel as kivi2's stores reach the one-warp
# launch (mma_batched: 12,672 tokens at batch 16, 202,752 at batch 1), with its launches compiled ahead (the working
# tree); batch-1 steps by kind around KIVI's and MILLION's flushes; then batch 16 with 78ee93a's decode.py.
source docs/gpu_runs/2026-12-02i/setup.sh
# .g4/decode_78ee93a.py: `git show 78ee93a:kvtool/runtime/kernels/decode.py > .g4/decode_78ee93a.py`, carried
timeout 100 python3 docs/gpu_runs/2026-12-03f/compiles_by_step.py kivi2 12500 300 16 2>&1 | tee $OUT/compiles_b16.log
timeout 160 python3 docs/gpu_runs/2026-12-03f/compiles_by_step.py kivi2 202600 300 1 2>&1 | tee $OUT/compiles_b1.log
timeout 130 python3 docs/gpu_runs/2026-12-04/flush_step_times.py million2,kivi2 8192 2>&1 | tee $OUT/flush_step_times.log
cp .g4/decode_78ee93a.py kvtool/runtime/kernels/decode.py
timeout 100 python3 docs/gpu_runs/2026-12-03f/compiles_by_step.py kivi2 12500 300 16 2>&1 \
  | tee $OUT/compiles_b16_before.log
date -u
