"""Device-only probe: KVQuant's outlier slots sorted by index, and the decode kernel skipping, per tile, the slots
that name no element of its head. Each case: a layer filled as the bench fills it (slots in the encode's order), then
timed with base = .g4/base.py (f02aeaf's kernel, every slot compared) and now = the working tree's kernel (call 4:
f02aeaf with slots_skipped.patch, not kept); then its slots sorted in place (index and value together, per token) and
both timed again. The outputs of now and base on the sorted slots are compared.
  python3 docs/gpu_runs/2026-12-03d/sorted_skip.py kvquant3,kvquant3-head 1x32768,1x131072"""
import importlib.util
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode

FORMATS = sys.argv[1].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[2].split(",")]


def use(module) -> None:
    """Make `module` the decode kernel that kernels.attend_decode imports at each call."""
    sys.modules[decode.__name__] = module


spec = importlib.util.spec_from_file_location(decode.__name__, ".g4/base.py")
modules = {"now": decode, "base": importlib.util.module_from_spec(spec)}
use(modules["base"])  # its kernels register under the module's name as they load
spec.loader.exec_module(modules["base"])


def sort_slots(layer) -> int:
    """Sort every stored token's outlier slots by index, in place; returns how many streams had slots."""
    sorted_streams = 0
    for group in layer.groups:
        for stream in (group.keys, group.values):
            packed = stream.packed()
            if "outlier_index" in packed:
                index, value = packed["outlier_index"], packed["outlier_value"]
                ordered, order = index.long().sort(dim=-1)
                value.copy_(value.gather(-1, order))
                index.copy_(ordered.to(index.dtype))
                sorted_streams += 1
    return sorted_streams


scaling = bench.HEAD_DIM ** -0.5
device = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run under TRITON_INTERPRET=1, untimed
time_us = bench._time_us if device == "cuda" else (lambda fn: 0.0)
for batch, context in CASES:
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device=device, dtype=torch.float16)
    for fmt in FORMATS:
        layer = bench.make_layer(fmt, device)
        bench.fill_layer(layer, batch, context, device)
        run = lambda: kernels.attend_decode(layer, query, None, scaling, None)  # noqa: E731
        for order in ("encode order", "sorted"):
            if order == "sorted":
                print(f"  sorted {sort_slots(layer)} streams", flush=True)
            outputs = {}
            for name in ("base", "now"):
                use(modules[name])
                outputs[name] = run().float()
                print(f"{batch}x{context} {fmt:14} {order:12} {name:4} {time_us(run):9.2f} us", flush=True)
            print(f"  now vs base: {(outputs['now'] - outputs['base']).abs().max().item():.2e}", flush=True)
        del layer
        if device == "cuda":
            torch.cuda.empty_cache()
