"""Device-only: KVQuant's outliers per token (kvquant3, the paper's) against per token and head (kvquant3-head:
key_vector=head, value_vector=head): errors against the reference path, decode attention on the same shapes, and
batch-1 latency rows at 32K in one process.
  python3 docs/gpu_runs/2026-12-03b/head_probe.py"""
import torch

from kvtool import bench
from kvtool.runtime import kernels

FORMATS = ["kvquant3", "kvquant3-head"]
print("errors vs reference:", {k: f"{v:.1e}" for k, v in bench.check_against_reference(FORMATS).items()}, flush=True)
scaling = bench.HEAD_DIM ** -0.5
for batch, context in ((1, 32768), (1, 131072), (16, 32768)):
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    for fmt in FORMATS:
        layer = bench.make_layer(fmt, "cuda")
        bench.fill_layer(layer, batch, context, "cuda")
        us = bench._time_us(lambda: kernels.attend_decode(layer, query, None, scaling, None))
        print(f"batch {batch} context {context}: {fmt:14} {us:9.2f} us", flush=True)
        del layer
        torch.cuda.empty_cache()
model = bench.llama3_8b_random()
for kind in ("HF DynamicCache", *FORMATS, "HF DynamicCache"):
    print(bench._measure(model, kind, 1, 32768, bench.LATENCY_STEPS), flush=True)
