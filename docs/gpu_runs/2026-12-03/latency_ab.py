"""Device-only: batch-1 latency rows as `kvtool bench --part latency` measures them (bench._measure), with the
decode kernel of .g4/base.py ("base") and of the working tree ("now") side by side in one process, after HF
DynamicCache's row; rows alternate base, now per format.
  python3 docs/gpu_runs/2026-12-03/latency_ab.py kvquant3,kvquant2 32768"""
import importlib.util
import sys

import torch

from kvtool import bench
from kvtool.runtime.kernels import decode

torch.backends.cuda.enable_cudnn_sdp(False)  # as e2e_bench
formats, context = sys.argv[1].split(","), int(sys.argv[2])
spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", ".g4/base.py")
modules = {"now": decode, "base": importlib.util.module_from_spec(spec)}
spec.loader.exec_module(modules["base"])
model = bench.llama3_8b_random()
print({**bench._measure(model, "HF DynamicCache", 1, context, bench.LATENCY_STEPS), "kernel": "-"}, flush=True)
for fmt in formats:
    for name in ("base", "now"):
        sys.modules["kvtool.runtime.kernels.decode"] = modules[name]  # attend_decode imports it at each call
        print({**bench._measure(model, fmt, 1, context, bench.LATENCY_STEPS), "kernel": name}, flush=True)
