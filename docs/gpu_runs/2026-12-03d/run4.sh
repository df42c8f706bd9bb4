#!/bin/bash
# Device call 4 of 2026-12-03's fourth session (H200): KVQuant's slots sorted by index and skipped per tile where no
# token of it names an element of the head (sorted_skip.py; base = .g4/base.py, f02aeaf's decode.py; the working
# tree: f02aeaf with slots_skipped.patch). Slower; not kept.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 170 python3 docs/gpu_runs/2026-12-03d/sorted_skip.py kvquant3 1x32768,1x131072 2>&1 | tee $OUT/sorted_skip.log
date -u
