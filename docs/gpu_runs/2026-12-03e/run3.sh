#!/bin/bash
# Device call 3 of 2026-12-03's fifth session (H200): the bench's batch-1 latency rows of the formats whose steps
# flush held tokens (KIVI, Duo, MILLION, CQ), with flushes run ahead of their steps (the working tree).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 -c "$KVTOOL" bench --part latency --formats fp16-kernel,kivi4,kivi2,duo50+kivi2,million4,million2,cq4,cq2 \
  --out $OUT/latency 2>&1 | tee $OUT/latency.log
date -u
