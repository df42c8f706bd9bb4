#!/bin/bash
# Device call 8 of the ninth session of 2026-12-02 (H200): call 6's longest part again, its rows now timing 4 steps
# after 4 untimed ones (1 after 1 timed a compile: 4,920.86 ms per step there, 145.0-171.51 in call 7, where the
# warm machine's Triton cache held the kernels); a fresh Triton cache, so that every kernel compiles in this process.
source docs/gpu_runs/2026-12-02i/setup.sh
export TRITON_CACHE_DIR=$(mktemp -d)
timeout 200 python3 -c "$KVTOOL" bench --part longest --formats duo50+kivi2 --out $OUT/longest 2>&1 | tee $OUT/longest.log
date -u
