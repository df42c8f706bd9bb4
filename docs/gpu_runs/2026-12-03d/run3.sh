#!/bin/bash
# Device call 3 of 2026-12-03's fourth session (H200): call 2's latency rows that its time limit cut (cq4, cq2, qaq4
# at 32K), with HF's rows again in this process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 500 python3 -c "$KVTOOL" bench --part latency --formats cq4,cq2,qaq4 --out $OUT/latency 2>&1 \
  | tee $OUT/latency.log
date -u
