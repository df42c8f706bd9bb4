#!/bin/bash
# Device call 3 of 2026-12-03's seventh session (H200): duo50+kivi2 end to end on 2cbceab (throughput at the largest
# batch that fits at 8K and 32K against HF StaticCache, then batch-1 latency), the command of 2026-12-02i's run5.sh,
# cut short by the session's remaining device time.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 380 python3 -c "$KVTOOL" bench --part e2e --formats duo50+kivi2 \
  --out $OUT/e2e 2>&1 | tee $OUT/e2e.log
date -u
