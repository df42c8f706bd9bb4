#!/bin/bash
# Device call 3 of 2026-12-04 (H200): where kivi2's batch-1 latency row at 8K goes beyond fp16-kernel's, whose replays
# take about the same time (call 2): every step of the bench's 512 timed by kind, then the bench's own rows.
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 200 python3 docs/gpu_runs/2026-12-04/flush_step_times.py fp16-kernel,kivi2 8192 512 across 2>&1 \
  | tee $OUT/bench_window_steps.log
timeout 200 python3 -c '
from kvtool import bench
model = bench.llama3_8b_random()
for kind in ("fp16-kernel", "kivi2", "fp16-kernel", "kivi2"):
    print(bench._measure(model, kind, 1, 8192, bench.LATENCY_STEPS), flush=True)
' 2>&1 | tee $OUT/latency_rows.log
date -u
