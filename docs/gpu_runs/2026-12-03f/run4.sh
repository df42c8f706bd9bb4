#!/bin/bash
# Device call 4 of 2026-12-03's sixth session (H200): which steps of a batch-1 generation compile a Triton kernel,
# duo50+kivi2 at 8K, whose retrieval heads first take fast tiles at step 384 (8,576 tokens), with the fast launch
# compiled ahead (the working tree).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 150 python3 docs/gpu_runs/2026-12-03f/compiles_by_step.py duo50+kivi2 8192 400 2>&1 | tee $OUT/compiles.log
date -u
