#!/bin/bash
# Device call 7 of 2026-12-04c (H200): duo50+kivi2 end to end on the current code (throughput at the largest batch
# that fits at 8K and 32K against HF StaticCache, then batch-1 latency beside HF's caches), the command of
# 2026-12-03g's run3.sh.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 -c "$KVTOOL" bench --part e2e --formats duo50+kivi2 \
  --out $OUT/e2e 2>&1 | tee $OUT/e2e.log
date -u
