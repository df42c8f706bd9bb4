#!/bin/bash
# Device call 1 of 2026-12-03's sixth session (H200): KVQuant's and QAQ's outliers scattered into a scratch tile and
# read back whole (one compare per element) against one compare-and-select per element and slot (.g4/base.py =
# 8679e15's decode.py), on the same filled caches; generic launch shapes besides.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 570 python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,generic:16/4/1/16,generic:32/4/1/8,generic:16/8/1/8 \
  kvquant3,kvquant3-head,kvquant2,qaq4 1x32768,1x131072,16x32768 2>&1 | tee $OUT/sweep.log
date -u
