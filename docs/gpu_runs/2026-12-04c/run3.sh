#!/bin/bash
# Device call 3 of 2026-12-04c (H200): a fast graph executable updated in place with a later capture (toy_update.py).
set -x
export PYTHONPATH=$PWD/docs/gpu_runs  # toy_graph_times.py, moved there after calls 1-4
date -u
python3 -c "import torch; print(torch.__version__, torch.version.cuda)"
timeout 120 python3 docs/gpu_runs/2026-12-04c/toy_update.py 2>&1 | tee $OUT/toy_update.log
date -u
