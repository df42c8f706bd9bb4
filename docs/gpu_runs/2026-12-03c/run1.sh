#!/bin/bash
# Device call 1 of 2026-12-03's third session (H200): ADC lookups from L1 against tl.gather through shared memory.
set -x
date -u
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 500 python3 docs/gpu_runs/2026-12-03c/gather_probe.py 2>&1 | tee $OUT/gather_probe.log
date -u
