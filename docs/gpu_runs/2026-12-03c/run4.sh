#!/bin/bash
# Device call 4 of 2026-12-03's third session (H200): every format at the goal's case (128K, batch 1) with the code
# of 7ceedc1, checked against the reference path first.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 300 python3 -c "$KVTOOL" bench --part check --part attention --contexts 131072 --batches 1 \
  --out $OUT 2>&1 | tee $OUT/bench.log
date -u
