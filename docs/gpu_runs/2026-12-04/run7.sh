#!/bin/bash
# Device call 7 of 2026-12-04 (H200): a process's fourth graph onwards replays slower (call 6); which change to the
# captures keeps the first graphs' speed.
source docs/gpu_runs/2026-12-02i/setup.sh
for variant in plain collect pool reuse keep; do
  timeout 110 python3 docs/gpu_runs/2026-12-04/graph_count.py fp16-kernel 8192 $variant 2>&1 | grep -v Warn \
    | tee -a $OUT/graph_count.log
done
date -u
