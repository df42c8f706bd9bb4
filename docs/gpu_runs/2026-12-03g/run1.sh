#!/bin/bash
# Device call 1 of 2026-12-03's seventh session (H200): the bench's batch-1 latency rows on 72a151f (launches
# compiled ahead, one merge per layer), HF's caches in the same process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 -c "$KVTOOL" bench --part latency \
  --formats fp16-kernel,kivi4,kivi2,duo50+kivi2,million2,kvquant3,kvquant3-head,cq2 \
  --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
