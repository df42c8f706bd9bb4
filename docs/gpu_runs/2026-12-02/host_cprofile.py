"""Device-only: cProfile of batch-1 decode steps (Llama-3-8B shape, random weights, 8K context), to place the host
time that host_profile.py's entry points do not cover.
  python3 docs/gpu_runs/2026-12-02/host_cprofile.py "HF DynamicCache,kivi2" 8192"""
import cProfile
import pstats
import sys
import time

import torch

from kvtool import bench
from kvtool.runtime.generate import forward

torch.backends.cuda.enable_cudnn_sdp(False)
model = bench.llama3_8b_random()
context = int(sys.argv[2])
for kind in sys.argv[1].split(","):
    cache = bench.make_cache(model, kind, 1, context, 40)
    ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
    with torch.no_grad():
        for _ in range(3):
            ids = forward(model, ids, cache, logits_to_keep=1).logits[:, -1:].argmax(-1)
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
