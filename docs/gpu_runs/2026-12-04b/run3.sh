#!/bin/bash
# Device call 3 of 2026-12-04b (H200): host vs GPU time of a codebook encode (call 2: ~90 us per 128-token window).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 120 python3 docs/gpu_runs/2026-12-04b/codebook_encode_profile.py 2>&1 | grep -v "Warn\|USDT" \
  | tee $OUT/codebook_encode_profile.log
date -u
