"""Device-only: which decode steps of the bench's batch-1 latency run compile a Triton kernel (a JIT compile costs
the host seconds). A random-weight Llama-3-8B, each format's cache filled as `kvtool bench` fills it, 512 greedy
steps (or STEPS) through the decoder the bench times (the bench's first 256 untimed, the next 256 timed); per step
its time and the kernels compiled in it. BATCH (default 1): sequences per step.
  python3 docs/gpu_runs/2026-12-03f/compiles_by_step.py duo50+kivi2,kivi2 8192 [STEPS] [BATCH]"""
import sys
import time

import torch
from triton.runtime import jit

from kvtool import bench
from kvtool.runtime.generate import decoder

formats, context = sys.argv[1].split(","), int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 512
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
compiled = []
original = jit.JITFunction._do_compile


def recorded(self, key, signature, device, constexprs, options, attrs, warmup):
    compiled.append(self.fn.__name__)
    return original(self, key, signature, device, constexprs, options, attrs, warmup)


jit.JITFunction._do_compile = recorded
model = bench.llama3_8b_random()
for name in formats:
    cache = bench.make_cache(model, name, batch, context, steps + 8)
    step = decoder(model, cache, graphs=True)
    ids = torch.randint(0, model.config.vocab_size, (batch, 1), device="cuda")
    times = []
    with torch.no_grad():
        for index in range(steps):
            compiled.clear()
            torch.cuda.synchronize()
            start = time.perf_counter()
            ids = step(ids).argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1e3)
            if compiled:
                print(f"{name} step {index}: {times[-1]:.1f} ms, compiled {compiled}", flush=True)
    for lo in range(0, steps, 256):
        part = times[lo: lo + 256]
        print(f"{name} at batch {batch} from {context}: steps {lo}-{lo + len(part) - 1} "
              f"{sum(part) / len(part):.2f} ms per step, slowest {[round(t, 1) for t in sorted(part)[-3:]]}",
              flush=True)
    del cache, step
    torch.cuda.empty_cache()
