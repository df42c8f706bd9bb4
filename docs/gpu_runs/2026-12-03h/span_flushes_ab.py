"""Device-only: batch-1 latency rows as `kvtool bench --part latency` measures them (bench._measure), with a captured
step's replays running across the flushes of held tokens, each flush encoded between two replays ("across", the
working tree), and with every flush ending the replays, its step captured anew as before ("ends": replayable_steps
cut at the first flush), side by side in one process after HF DynamicCache's and fp16-kernel's rows.
  PYTHONPATH=.:docs/gpu_runs python3 docs/gpu_runs/2026-12-03h/span_flushes_ab.py kivi2,duo50+kivi2 \
    8192,32768"""
import sys

import torch
from flush_modes import across, ends_at_flush

from kvtool import bench
from kvtool.runtime import graphs

torch.backends.cuda.enable_cudnn_sdp(False)  # as e2e_bench
formats, contexts = sys.argv[1].split(","), [int(c) for c in sys.argv[2].split(",")]
model = bench.llama3_8b_random()
for context in contexts:
    for kind in ("HF DynamicCache", "fp16-kernel"):
        print({**bench._measure(model, kind, 1, context, bench.LATENCY_STEPS), "flushes": "-"}, flush=True)
    for fmt in formats:
        for mode, method in (("ends", ends_at_flush), ("across", across)):
            graphs.replayable_steps = method
            print({**bench._measure(model, fmt, 1, context, bench.LATENCY_STEPS), "flushes": mode}, flush=True)
