"""Device-only: where a batch-1 decode step's host time goes (Llama-3-8B shape, random weights, 8K context).
Inclusive host time per step of the cache's and the kernels' entry points (perf_counter around each call, no syncs:
the step is host-bound, so host time is what it costs), then torch.profiler's op counts and top host-time ops.
  python3 docs/gpu_runs/2026-12-02/host_profile.py "HF DynamicCache,kivi2,duo50+kivi2" 8192"""
import collections
import functools
import sys
import time

import torch
import triton
from transformers import AttentionInterface, DynamicCache
from transformers.integrations import sdpa_attention
from warm import warmed_caches

from kvtool.runtime import cache as kv_cache, stream as kv_stream
from kvtool.runtime.generate import forward
from kvtool.runtime.kernels import decode

HOST = collections.Counter()


def timed(owner, name, label):
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            HOST[label] += time.perf_counter() - start
    setattr(owner, name, wrapper)


for owner, name, label in [
    (kv_cache.CompressedLayer, "update", "CompressedLayer.update"),
    (kv_cache.CompressedLayer, "attend", "CompressedLayer.attend"),
    (kv_stream.TokenStream, "append", "  TokenStream.append"),
    (kv_stream.TokenStream, "encode_through", "    TokenStream.encode_through"),
    (kv_stream.TokenStream, "settle", "  TokenStream.settle"),
    (decode, "decode_attention", "  decode_attention"),
    (triton.runtime.jit.JITFunction, "run", "    triton launches (all)"),
    (DynamicCache, "update", "DynamicCache.update"),
    (sdpa_attention, "sdpa_attention_forward", "sdpa_attention_forward"),
]:
    timed(owner, name, label)
kv_cache.sdpa_attention_forward = sdpa_attention.sdpa_attention_forward  # the cache module imported it by name
AttentionInterface.register("sdpa", sdpa_attention.sdpa_attention_forward)  # what "sdpa" models call

context = int(sys.argv[2])
STEPS = 10
for kind, model, cache, ids in warmed_caches(sys.argv[1].split(","), context):
    with torch.no_grad():
        torch.cuda.synchronize()
        HOST.clear()
        start = time.perf_counter()
        for _ in range(STEPS):
            ids = forward(model, ids, cache, logits_to_keep=1).logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        step = (time.perf_counter() - start) / STEPS
        print(f"== {kind}, batch 1, {context} tokens: {step * 1e3:.2f} ms per step; host ms per step, inclusive:")
        for label, seconds in HOST.items():
            print(f"   {label:34s} {seconds / STEPS * 1e3:7.2f}")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                ids = forward(model, ids, cache, logits_to_keep=1).logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx"))
    aten = sum(e.count for e in events if e.key.startswith("aten::"))
    gpu_us = sum(e.self_device_time_total for e in events) / 3
    print(f"   per step: {aten / 3:.0f} aten ops, {launches / 3:.0f} kernel launches, GPU busy {gpu_us / 1e3:.2f} ms")
    print(events.table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=48))
    del cache
    torch.cuda.empty_cache()
