#!/bin/bash
# Device call 6 of 2026-12-04c (H200): every format's decode attention on HEAD against fp16 SDPA in one process (the
# issue's attention goals; the tiles unchanged since the last such table), checked against the reference path first.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 580 python3 -c "$KVTOOL" bench --part check --part attention --contexts 32768,131072 --batches 1,16 \
  --out $OUT/attention 2>&1 | tee $OUT/attention.log
date -u
