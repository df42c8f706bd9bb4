#!/bin/bash
# Device call 13 of 2026-12-04b (H200): call 8's toy had no eager run of the graph's kernels before its captures;
# toy_graphs.py without it (TOY_NO_WARMUP=1), plain and with call 8's warm-up on a new stream.
source docs/gpu_runs/2026-12-02i/setup.sh
for streams in plain warm; do
  TOY_NO_WARMUP=1 timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add $streams 2>&1 \
    | tee -a $OUT/toy_graphs.log
done
date -u
