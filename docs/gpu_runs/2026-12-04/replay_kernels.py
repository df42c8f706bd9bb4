"""Device-only: the GPU kernels of a replayed batch-1 decode step, by name, for each format (torch.profiler over 20
replays, after WARM steps, 8 by default: two eager steps, a capture and five replays): per step, each kernel's
launches and time, the kernels' total, and a replay's wall time over 20 replays before those. A random-weight
Llama-3-8B, each format's cache filled as `kvtool bench` fills it.
  python3 docs/gpu_runs/2026-12-04/replay_kernels.py fp16-kernel,kivi2 8192,32768 [WARM]"""
import sys
import time

import torch
from torch.autograd import DeviceType
from replays import greedy, warmed_decoder
from torch.profiler import ProfilerActivity, profile

from kvtool import bench

formats, contexts = sys.argv[1].split(","), [int(c) for c in sys.argv[2].split(",")]
REPLAYS = 20
warm = int(sys.argv[3]) if len(sys.argv) > 3 else 8
model = bench.llama3_8b_random()
for context in contexts:
    for name in formats:
        cache, step, ids = warmed_decoder(model, name, context, warm, warm + 2 * REPLAYS)
        with torch.no_grad():
            start = time.perf_counter()
            ids = greedy(step, ids, REPLAYS)
            torch.cuda.synchronize()
            wall = (time.perf_counter() - start) * 1e3 / REPLAYS
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                ids = greedy(step, ids, REPLAYS)
                torch.cuda.synchronize()
        kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA and e.device_time_total > 0]
        kernels.sort(key=lambda e: -e.device_time_total)
        total = sum(e.device_time_total for e in kernels) / REPLAYS / 1e3
        print(f"{name} at {context}, after {warm} steps: replay {wall:.2f} ms wall, kernels {total:.2f} ms per step",
              flush=True)
        for e in kernels[:25]:
            print(f"  {e.device_time_total / REPLAYS:9.1f} us  {e.count / REPLAYS:6.1f}x  {e.key[:110]}", flush=True)
        del cache, step
        torch.cuda.empty_cache()
