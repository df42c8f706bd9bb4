#!/bin/bash
# Device call 7 of 2026-12-04b (H200): graph_count.py's plain variant with the driver's launch queues scaled
# (CUDA_SCALE_LAUNCH_QUEUES=4x) and modules loaded eagerly (CUDA_MODULE_LOADING=EAGER); call 6: the hardware queues
# (CUDA_DEVICE_MAX_CONNECTIONS 1, 8, 32) did not change which graphs replay fast.
source docs/gpu_runs/2026-12-02i/setup.sh
for setting in CUDA_SCALE_LAUNCH_QUEUES=4x CUDA_MODULE_LOADING=EAGER; do
  echo "$setting" | tee -a $OUT/graph_count.log
  env $setting timeout 150 python3 docs/gpu_runs/2026-12-04/graph_count.py fp16-kernel 8192 plain 2>&1 \
    | grep -v Warn | tee -a $OUT/graph_count.log
done
date -u
