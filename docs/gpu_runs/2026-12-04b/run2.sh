#!/bin/bash
# Device call 2 of 2026-12-04b (H200): the codebook encode kernel with one program per sub-space (call 1: 146 us for
# million2's 128-token flush of one layer's keys, 64 programs) at 8-64 tokens per program; the bench's check of
# MILLION and CQ with it, and MILLION's flushes step by step again.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 120 python3 docs/gpu_runs/2026-12-04b/codebook_encode_times.py 8,16,32,64 2>&1 \
  | tee $OUT/codebook_encode_times.log
timeout 200 python3 -c "$KVTOOL" bench --part check --formats million4,million2,cq4,cq2 -o $OUT/check 2>&1 \
  | grep -v Warn | tee $OUT/check.log
timeout 200 python3 docs/gpu_runs/2026-12-04/flush_step_times.py million2 8192 258 across 2>&1 | grep -v Warn \
  | tee $OUT/flush_step_times.log
date -u
