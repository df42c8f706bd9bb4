"""Device-only: GPU time of each kernel launch of one layer's decode attention (torch.profiler trace, kernels told
apart by name and grid), batch 1, for the formats and contexts given.
  python3 docs/gpu_runs/2026-12-02/launch_times.py duo50+kivi2,kivi2 32768,131072"""
import collections
import json
import sys
import tempfile

import torch

from kvtool import bench
from kvtool.runtime import kernels

scaling = bench.HEAD_DIM ** -0.5
for context in map(int, sys.argv[2].split(",")):
    query = torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    for name in sys.argv[1].split(","):
        layer = bench.make_layer(name, "cuda")
        bench.fill_layer(layer, 1, context, "cuda")
        for _ in range(5):
            kernels.attend_decode(layer, query, None, scaling, None)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(20):
                kernels.attend_decode(layer, query, None, scaling, None)
            torch.cuda.synchronize()
        with tempfile.NamedTemporaryFile(suffix=".json") as trace:
            prof.export_chrome_trace(trace.name)
            events = json.load(open(trace.name))["traceEvents"]
        launches = collections.defaultdict(list)
        for event in events:
            if event.get("cat") == "kernel":
                launches[(event["name"][:40], str(event["args"].get("grid")))].append(event["dur"])
        print(f"== {name}, batch 1, {context} tokens (µs per call, mean of 20):")
        for (kernel, grid), durations in launches.items():
            print(f"   {kernel:40s} grid {grid:16s} {sum(durations) / 20:8.2f}  ({len(durations) // 20} per call)")
        del layer
        torch.cuda.empty_cache()
