#!/bin/bash
# Device call 5 of the ninth session of 2026-12-02 (H200): duo50+kivi2 end to end after sinks stopped keeping their
# chunk alive (d1bc5ff); the command of docs/gpu_runs/2026-12-02c (batches 574 and 236 reached there, 974 and 293 fitted).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 560 python3 -c "$KVTOOL" bench --part e2e --formats duo50+kivi2 \
  --out $OUT/e2e 2>&1 | tee $OUT/e2e.log
date -u
