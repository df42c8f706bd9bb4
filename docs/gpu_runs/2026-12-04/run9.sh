#!/bin/bash
# Device call 9 of 2026-12-04 (H200): the bench's latency rows after bench.graphs_past_the_fast_ones, kivi2 timed
# before and after fp16-kernel (calls 3 and 4: whichever came first was ~0.6 ms faster).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 170 python3 -c '
from kvtool import bench
model = bench.llama3_8b_random()
bench.graphs_past_the_fast_ones()
for kind in ("kivi2", "fp16-kernel", "kivi2"):
    print(bench._measure(model, kind, 1, 8192, bench.LATENCY_STEPS), flush=True)
' 2>&1 | tee $OUT/latency_after_burn.log
date -u
