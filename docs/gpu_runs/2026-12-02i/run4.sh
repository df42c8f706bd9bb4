#!/bin/bash
# Device call 4 of the ninth session of 2026-12-02 (H200): call 3 had kvquant3 and kvquant2 slower than HF
# DynamicCache at 32K, batch 1 (24.41 / 24.03 against 20.67 ms); a second process, DynamicCache timed first and last.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 400 python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,kvquant3,kvquant2,qaq4,HF DynamicCache" \
  32768 2>&1 | grep -v Warning | tee $OUT/latency_rows_32k.log
date -u
