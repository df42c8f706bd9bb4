"""Device-only: how much KVQuant's outlier slots cost the decode: kvquant3 as the bench has it (21 key and 12 value
slots per token, over all 8 heads) against the same format with 3 and 2 slots per token (what a head would compare
with slots kept per head: 1% of its 128 channels at the key budget of 2, and one a side for values), decode attention
on the same shapes and batch-1 latency rows at 32K in one process.
  python3 docs/gpu_runs/2026-12-03b/slots_probe.py"""
import dataclasses

import torch

from kvtool import bench
from kvtool.runtime import kernels


def few_slots():
    groups = bench.kvquant_groups(3)
    for group in groups:
        group.keys.slots, group.values.slots = 3, 2
    return groups


bench.FORMATS["kvquant3-3/2"] = dataclasses.replace(bench.FORMATS["kvquant3"], name="kvquant3-3/2",
                                                    groups=few_slots)
FORMATS = ["kvquant3", "kvquant3-3/2"]
print("errors vs reference:", {k: f"{v:.1e}" for k, v in bench.check_against_reference(FORMATS).items()}, flush=True)
scaling = bench.HEAD_DIM ** -0.5
for context in (32768, 131072):
    query = torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    for fmt in FORMATS:
        layer = bench.make_layer(fmt, "cuda")
        bench.fill_layer(layer, 1, context, "cuda")
        us = bench._time_us(lambda: kernels.attend_decode(layer, query, None, scaling, None))
        print(f"batch 1 context {context}: {fmt:14} {us:9.2f} us", flush=True)
        del layer
        torch.cuda.empty_cache()
model = bench.llama3_8b_random()
for kind in ("HF DynamicCache", *FORMATS):
    print(bench._measure(model, kind, 1, 32768, bench.LATENCY_STEPS), flush=True)
