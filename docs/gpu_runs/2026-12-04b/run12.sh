#!/bin/bash
# Device call 12 of 2026-12-04b (H200): call 8's toy kept all six graphs fast, and neither Triton (call 11) nor a new
# stream alone (call 10) was the difference: its warm-up on a new stream, ordered by events, and each part alone.
source docs/gpu_runs/2026-12-02i/setup.sh
for streams in warm work waits; do
  timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add,alloc $streams 2>&1 | tee -a $OUT/toy_graphs.log
done
date -u
