"""Device-only: where a codebook encode's time goes (call 2: ~90 us for million2's 128-token window of one layer's
keys, events around the call). Host time per call (100 calls enqueued back to back, then synchronised once), and
the kernel's own time on the GPU (torch.profiler), for the bench's million2 and million4 at 1x128 and 16x4096.
  PYTHONPATH=.:docs/gpu_runs python3 docs/gpu_runs/2026-12-04b/codebook_encode_profile.py"""
import time

import torch
from torch.profiler import ProfilerActivity, profile

from kvtool import bench

torch.set_default_device("cuda")
for width, name in ((4, "million2"), (2, "million4")):
    (group,) = bench.million_groups(width)
    codec = group.keys
    for batch, tokens in ((1, 128), (16, 4096)):
        x = torch.randn(batch, bench.KV_HEADS, tokens, bench.HEAD_DIM).half()
        codec.encode(x, 0)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(100):
            codec.encode(x, 0)
        host = (time.perf_counter() - start) * 1e4
        torch.cuda.synchronize()
        total = (time.perf_counter() - start) * 1e4
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(20):
                codec.encode(x, 0)
            torch.cuda.synchronize()
        kernels = [(e.key, e.device_time_total / e.count, e.count) for e in prof.key_averages()
                   if e.device_time_total]
        print(f"{name} {batch}x{tokens}: host {host:.1f} us per call, {total:.1f} us per call synchronised at the "
              "end; GPU: " + "; ".join(f"{k} {us:.1f} us x{n}" for k, us, n in kernels), flush=True)
