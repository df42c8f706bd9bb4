#!/bin/bash
# Device call 2 of the ninth session of 2026-12-02 (H100, nvidia-h100-x1): decode throughput at the largest batch
# (8K, 32K) and batch-1 latency against HF caches for the KIVI family, in one process.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 560 python3 -c "$KVTOOL" bench --part e2e --formats fp16-kernel,kivi4,kivi2,duo50+kivi2 \
  --out $OUT/e2e 2>&1 | tee $OUT/e2e.log
date -u
