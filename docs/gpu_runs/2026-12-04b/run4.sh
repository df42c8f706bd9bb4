#!/bin/bash
# Device call 4 of 2026-12-04b (H200): the bench's batch-1 latency rows with the working tree (the three fast graphs
# burnt first, 6848377; MILLION's and CQ's flushes through the codebook encode kernel), the formats of call 2 of
# 2026-12-03h, HF's caches in the same process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 575 python3 -c "$KVTOOL" bench --part latency \
  --formats fp16-kernel,kivi4,kivi2,duo50+kivi2,million2,kvquant3,kvquant3-head,cq2 \
  --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
