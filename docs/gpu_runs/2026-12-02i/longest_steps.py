"""Device-only: ms per decode step of duo50+kivi2 at batch 1 and CONTEXT tokens after as many untimed steps, for each
STEPS (the longest part of `kvtool bench` times 1 after 1).
  python3 docs/gpu_runs/2026-12-02i/longest_steps.py 10461184 1,1,8"""
import sys

import torch

from kvtool import bench

torch.backends.cuda.enable_cudnn_sdp(False)  # as e2e_bench
context, counts = int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")]
model = bench.llama3_8b_random()
for steps in counts:
    cache = bench.make_cache(model, "duo50+kivi2", 1, context, 2 * steps)
    seconds = bench.decode_seconds(model, cache, 1, steps)
    print({"context": context, "steps": steps, "ms/step": round(seconds * 1e3, 2)}, flush=True)
    del cache
    torch.cuda.empty_cache()
