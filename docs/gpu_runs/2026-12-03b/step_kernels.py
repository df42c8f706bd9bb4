"""Device-only: what the GPU runs in a replayed batch-1 decode step (runtime/graphs.py), by kernel: a random-weight
Llama-3-8B, each format's cache filled to the context as `kvtool bench` fills it, 16 untimed steps (captures),
then torch.profiler over 20 steps; GPU time per step summed by kernel name, largest first.
  python3 docs/gpu_runs/2026-12-03b/step_kernels.py fp16-kernel,kvquant3 32768"""
import collections
import sys

import torch

from kvtool import bench
from kvtool.runtime import graphs

formats, context = sys.argv[1].split(","), int(sys.argv[2])
STEPS = 20
model = bench.llama3_8b_random()
for name in formats:
    cache = bench.make_cache(model, name, 1, context, 64)
    step = graphs.GraphedDecoder(model, cache)
    ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
    with torch.no_grad():
        for _ in range(16):
            ids = step(ids).argmax(-1, keepdim=True)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(STEPS):
                ids = step(ids).argmax(-1, keepdim=True)
            torch.cuda.synchronize()
    per_kernel, calls = collections.Counter(), collections.Counter()
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            per_kernel[event.name[:90]] += event.device_time / STEPS
            calls[event.name[:90]] += 1 / STEPS
    total = sum(per_kernel.values())
    print(f"== {name}, batch 1, {context} tokens: GPU busy {total / 1e3:.2f} ms per step", flush=True)
    for kernel, us in per_kernel.most_common(14):
        print(f"  {us:9.1f} us  {calls[kernel]:6.1f} calls  {kernel}")
    del cache, step
    torch.cuda.empty_cache()
