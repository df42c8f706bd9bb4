#!/bin/bash
# Device call 6 of the ninth session of 2026-12-02 (H200): the longest context decoded at batch 1 by fp16 (HF
# StaticCache) and duo50+kivi2 on the current code (last measured on the H100 on 2026-11-24).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 330 python3 -c "$KVTOOL" bench --part longest --formats duo50+kivi2 --out $OUT/longest 2>&1 | tee $OUT/longest.log
date -u
