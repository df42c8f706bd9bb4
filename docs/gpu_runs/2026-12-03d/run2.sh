#!/bin/bash
# Device call 2 of 2026-12-03's fourth session (H200): batch-1 latency of every format at 8K and 32K against HF
# DynamicCache, StaticCache and quanto int4/int2 in the same process, code of f02aeaf (cut at 570 s before cq4,
# cq2 and qaq4 at 32K: call 3).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 -c "$KVTOOL" bench --part latency --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
