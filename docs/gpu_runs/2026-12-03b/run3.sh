#!/bin/bash
# Device call 3 of 2026-12-03's second session (H200): what KVQuant's outlier slots cost the decode (slots_probe.py).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 420 python3 docs/gpu_runs/2026-12-03b/slots_probe.py 2>&1 | tee $OUT/slots_probe.log
date -u
