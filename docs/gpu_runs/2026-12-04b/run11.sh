#!/bin/bash
# Device call 11 of 2026-12-04b (H200): call 8's toy (no Triton imported) kept all six graphs fast; call 9's
# imported Triton. toy_graphs.py with and without the import, kinds that need no Triton.
source docs/gpu_runs/2026-12-02i/setup.sh
for kinds in add alloc; do
  timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py $kinds 2>&1 | tee -a $OUT/toy_graphs.log
  TOY_IMPORT_TRITON=1 timeout 60 python3 docs/gpu_runs/2026-12-04b/toy_graphs.py $kinds 2>&1 \
    | tee -a $OUT/toy_graphs.log
done
date -u
