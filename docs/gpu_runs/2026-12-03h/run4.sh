#!/bin/bash
# Device call 4 of 2026-12-03's eighth session (H200, warm after call 3; run as this one line): DuoAttention + KIVI-2
# inside a model, replays across flushes against eager steps.
source docs/gpu_runs/2026-12-02i/setup.sh >/dev/null 2>&1; timeout 250 python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py "duo50+kivi2 window 256" 2>&1 | grep -v Warning | tee $OUT/graphs_in_model_duo.log; date -u
