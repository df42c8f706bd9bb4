#!/bin/bash
# Device call 1 of 2026-12-04b (H200), on 11a6e6a: the codebook encode kernel (5cd0565) on a GPU for the first
# time: its times and centroids against the codecs' PyTorch encode (codebook_encode_times.py's first form: one line
# per shape, no sweep), the bench's check of MILLION and CQ formats (fused encode and attention vs the reference
# path), and MILLION's flushes step by step with it (call 1 of 2026-12-04: ~17 ms each).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 90 python3 docs/gpu_runs/2026-12-04b/codebook_encode_times.py 2>&1 | tee $OUT/codebook_encode_times.log
timeout 200 python3 -c "$KVTOOL" bench --part check --formats million4,million2,cq4,cq2 -o $OUT/check 2>&1 \
  | grep -v Warn | tee $OUT/check.log
timeout 200 python3 docs/gpu_runs/2026-12-04/flush_step_times.py million2 8192 258 across 2>&1 | grep -v Warn \
  | tee $OUT/flush_step_times.log
date -u
