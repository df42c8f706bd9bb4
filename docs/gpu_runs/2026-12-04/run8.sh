#!/bin/bash
# Device call 8 of 2026-12-04 (H200): do three one-kernel graphs made first count towards the three fast graphs of a
# process (call 7: the fourth graph onwards replays slower whatever the captures do)? Then kivi2 the same way.
source docs/gpu_runs/2026-12-02i/setup.sh
for args in "fp16-kernel 8192 burn3" "kivi2 8192 burn3" "kivi2 8192 plain"; do
  timeout 100 python3 docs/gpu_runs/2026-12-04/graph_count.py $args 2>&1 | grep -v Warn | tee -a $OUT/graph_count.log
done
date -u
