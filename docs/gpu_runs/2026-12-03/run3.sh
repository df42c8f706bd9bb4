#!/bin/bash
# Device call 3 of 2026-12-03 (H200): Nsight Compute on one decode launch at 128K, batch 1, of kvquant3 (generic
# tiles) and kivi2 (its fast launch), the committed kernel (f505ca4): details and per-instruction SASS samples (the
# CSVs, 3.6 MB, summarized by stall_summary.py into call3/ncu_*_stalls.txt and not kept).
source docs/gpu_runs/2026-12-02i/setup.sh
for fmt in kvquant3 kivi2; do
  timeout 200 ncu --kernel-name regex:decode_split --launch-skip 2 --launch-count 1 --set full --import-source no \
    -f -o /tmp/$fmt python3 docs/gpu_runs/2026-12-01/device_script.py one $fmt 2>&1 | tail -5
  ncu --import /tmp/$fmt.ncu-rep --page details > $OUT/ncu_${fmt}_details.txt 2>&1
  ncu --import /tmp/$fmt.ncu-rep --page source --print-source sass --csv > $OUT/ncu_${fmt}_sass.csv 2>&1
done
date -u
