#!/bin/bash
# Device call 6 of 2026-12-04b (H200): does the number of hardware queues change which CUDA graphs of a process
# replay fast (2026-12-04, calls 6-8: the first three ~0.6 ms faster per batch-1 step)? graph_count.py's plain
# variant with CUDA_DEVICE_MAX_CONNECTIONS unset (8), 1 and 32.
source docs/gpu_runs/2026-12-02i/setup.sh
for connections in default 1 32; do
  unset CUDA_DEVICE_MAX_CONNECTIONS
  [ $connections = default ] || export CUDA_DEVICE_MAX_CONNECTIONS=$connections
  echo "CUDA_DEVICE_MAX_CONNECTIONS=$connections" | tee -a $OUT/graph_count.log
  timeout 150 python3 docs/gpu_runs/2026-12-04/graph_count.py fp16-kernel 8192 plain 2>&1 | grep -v Warn \
    | tee -a $OUT/graph_count.log
done
date -u
