"""Device-only: batch-1 latency rows as `kvtool bench --part latency` measures them (bench._measure), with a graphed
step's device positions and rows made once per step and shared by its layers ("shared", the working tree) and made
per use, by each layer ("per use", GraphStep's methods without their memo), side by side in one process after HF
DynamicCache's row.
  python3 docs/gpu_runs/2026-12-03e/shared_positions_ab.py fp16-kernel,kivi2 8192,32768"""
import sys

import torch

from kvtool import bench
from kvtool.runtime.graphs import GraphStep

torch.backends.cuda.enable_cudnn_sdp(False)  # as e2e_bench
formats, contexts = sys.argv[1].split(","), [int(c) for c in sys.argv[2].split(",")]
shared = {"position": GraphStep.position, "rows": GraphStep.rows}
per_use = {"position": lambda self, first, count: self.steps * count + first,
           "rows": lambda self, first, count: torch.arange(count, device=self.steps.device) + self.steps * count + first}
model = bench.llama3_8b_random()
for context in contexts:
    print({**bench._measure(model, "HF DynamicCache", 1, context, bench.LATENCY_STEPS), "positions": "-"}, flush=True)
    for fmt in formats:
        for mode, methods in (("per use", per_use), ("shared", shared)):
            for name, method in methods.items():
                setattr(GraphStep, name, method)
            print({**bench._measure(model, fmt, 1, context, bench.LATENCY_STEPS), "positions": mode}, flush=True)
