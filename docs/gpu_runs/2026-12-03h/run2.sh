#!/bin/bash
# Device call 2 of 2026-12-03's eighth session (H200): the bench's batch-1 latency rows on 5fa70d0 (replays across
# flushes of held tokens), the formats of the seventh session's call 1, HF's caches in the same process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 575 python3 -c "$KVTOOL" bench --part latency \
  --formats fp16-kernel,kivi4,kivi2,duo50+kivi2,million2,kvquant3,kvquant3-head,cq2 \
  --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
