"""Device-only: batch-1 latency rows as `kvtool bench --part latency` measures them (bench._measure: a random-weight
Llama-3-8B, 256 untimed then 256 timed greedy steps), for the caches and contexts given, side by side in one
process; KIND:eager times a kvtool format with every step eager (no CUDA graph replays), as before MILLION's steps
could be replayed. STEPS (default 256) untimed and timed steps instead.
  python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,million2,million2:eager" 8192,32768 [STEPS]"""
import sys

import torch

from kvtool import bench
from kvtool.runtime import graphs

torch.backends.cuda.enable_cudnn_sdp(False)  # as e2e_bench
kinds, contexts = sys.argv[1].split(","), [int(c) for c in sys.argv[2].split(",")]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else bench.LATENCY_STEPS
model = bench.llama3_8b_random()
replayable = graphs.replayable_steps
for context in contexts:
    for kind in kinds:
        name, _, mode = kind.partition(":")
        graphs.replayable_steps = (lambda cache, limit=graphs.MAX_SPAN: 0) if mode == "eager" else replayable
        row = bench._measure(model, name, 1, context, steps)
        print({**row, "steps": mode or "graphs", "timed steps": steps}, flush=True)
