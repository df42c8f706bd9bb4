"""Device-only: batch-1 latency rows as `kvtool bench --part latency` measures them (bench._measure), with each
flush of held tokens encoded just before its step, which is then captured ("ahead", the working tree), and inside an
eager step as before ("in step": CompressedCache.encode_ahead made a no-op), side by side in one process after
HF DynamicCache's and fp16-kernel's rows.
  python3 docs/gpu_runs/2026-12-03e/flush_ahead_ab.py kivi2,duo50+kivi2 8192,32768"""
import sys

import torch

from kvtool import bench
from kvtool.runtime.cache import CompressedCache

torch.backends.cuda.enable_cudnn_sdp(False)  # as e2e_bench
formats, contexts = sys.argv[1].split(","), [int(c) for c in sys.argv[2].split(",")]
encode_ahead = CompressedCache.encode_ahead
model = bench.llama3_8b_random()
for context in contexts:
    for kind in ("HF DynamicCache", "fp16-kernel"):
        print({**bench._measure(model, kind, 1, context, bench.LATENCY_STEPS), "flushes": "-"}, flush=True)
    for fmt in formats:
        for mode, method in (("in step", lambda cache: None), ("ahead", encode_ahead)):
            CompressedCache.encode_ahead = method
            print({**bench._measure(model, fmt, 1, context, bench.LATENCY_STEPS), "flushes": mode}, flush=True)
