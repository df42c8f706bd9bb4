#!/bin/bash
# Device call 10 of 2026-12-04b (H200): call 8's toy kept all six graphs fast, call 9's did not; call 8 made a new
# stream before each capture. toy_graphs.py's kinds with a new stream per graph, unused or capturing.
source docs/gpu_runs/2026-12-02i/setup.sh
for streams in new capture; do
  timeout 100 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add,alloc,triton $streams 2>&1 \
  | tee -a $OUT/toy_graphs.log
done
date -u
