"""Device-only: cProfile of batch-1 decode steps (Llama-3-8B shape, random weights, 8K context), to place the host
time that host_profile.py's entry points do not cover.
  python3 docs/gpu_runs/2026-12-02/host_cprofile.py "HF DynamicCache,kivi2" 8192"""
import cProfile
import pstats
import sys
import time

import torch
from warm import warmed_caches

from kvtool.runtime.generate import forward

for kind, model, cache, ids in warmed_caches(sys.argv[1].split(","), int(sys.argv[2])):
    with torch.no_grad():
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            ids = forward(model, ids, cache, logits_to_keep=1).logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        print(f"== {kind}: {(time.perf_counter() - start) * 100:.2f} ms per step unprofiled", flush=True)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(10):
            ids = forward(model, ids, cache, logits_to_keep=1).logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        profile.disable()
    stats = pstats.Stats(profile).strip_dirs()
    stats.sort_stats("tottime").print_stats(28)
    stats.sort_stats("cumulative").print_stats(45)
    del cache
    torch.cuda.empty_cache()
