#!/bin/bash
# Device call 3 of the ninth session of 2026-12-02 (H200 this time, nvidia-h200): batch-1 latency of every format at
# 8K and 32K against HF DynamicCache, StaticCache and quanto int4/int2 in the same process (`--part latency`).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 560 python3 -c "$KVTOOL" bench --part latency \
  --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
