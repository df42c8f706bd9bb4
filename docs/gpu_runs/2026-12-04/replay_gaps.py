"""Device-only: where a replayed batch-1 decode step leaves the GPU idle. For each format in turn (the same format
may come twice), a random-weight Llama-3-8B's cache filled as `kvtool bench` fills it, WARM steps (a second graph is
captured at step 258), then 10 replays under torch.profiler: the kernels' timeline from its trace, the idle time
between consecutive kernels per step, the longest gaps and the kernels around them; and the host's time per call.
  python3 docs/gpu_runs/2026-12-04/replay_gaps.py kivi2,fp16-kernel,fp16-kernel 8192 300"""
import collections
import json
import os
import sys
import tempfile
import time

import torch
from replays import greedy, warmed_decoder
from torch.profiler import ProfilerActivity, profile

from kvtool import bench

formats, context, warm = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
REPLAYS = 10
model = bench.llama3_8b_random()
for name in formats:
    cache, step, ids = warmed_decoder(model, name, context, warm, warm + 2 * REPLAYS)
    with torch.no_grad():
        host = time.perf_counter()
        ids = greedy(step, ids, REPLAYS)
        host = (time.perf_counter() - host) * 1e3 / REPLAYS
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
            ids = greedy(step, ids, REPLAYS)
            torch.cuda.synchronize()
    path = os.path.join(tempfile.mkdtemp(), "trace.json")
    prof.export_chrome_trace(path)
    events = json.load(open(path))["traceEvents"]
    kernels = sorted((e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")),
                     key=lambda e: e["ts"])
    busy = sum(e["dur"] for e in kernels) / 1e3
    span = (kernels[-1]["ts"] + kernels[-1]["dur"] - kernels[0]["ts"]) / 1e3
    gaps = [(b["ts"] - a["ts"] - a["dur"], a["name"][:60], b["name"][:60]) for a, b in zip(kernels, kernels[1:])]
    print(f"{name} at {context}, after {warm} steps: host {host:.2f} ms per call (no sync); {len(kernels)} GPU ops "
          f"over {span:.2f} ms, busy {busy:.2f}, idle {span - busy:.2f} ({(span - busy) / REPLAYS:.3f} ms per step)",
          flush=True)
    sizes = collections.Counter(min(int(g), 100) // 5 * 5 for g, _, _ in gaps)
    print("  gaps (us, bucket of 5, 100 = 100 or more): " + ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
    for gap, before, after in sorted(gaps, reverse=True)[:12]:
        print(f"  {gap:8.1f} us after {before} before {after}")
    del cache, step
    torch.cuda.empty_cache()
