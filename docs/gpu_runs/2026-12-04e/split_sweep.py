"""Device-only: decode attention of one layer with launch fields changed (median of CUDA-graph replays, as `kvtool
bench --part attention`), on the same filled caches; errors against the reference path first.
  python3 split_sweep.py VARIANT[,VARIANT...] FORMAT[,FORMAT...] BxT[,BxT...]
A variant is "auto" (decode.LAUNCH as it is) or PATH.FIELD=N[+PATH.FIELD=N...], e.g.
generic.min_split_tiles=8+bitplanes.min_split_tiles=8."""
import contextlib
import dataclasses
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode

VARIANTS, FORMATS = sys.argv[1].split(","), sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]


@contextlib.contextmanager
def variant(name):
    saved = dict(decode.LAUNCH)
    for change in name.split("+") if name != "auto" else []:
        target, value = change.split("=")
        path, field = target.split(".")
        decode.LAUNCH[path] = dataclasses.replace(decode.LAUNCH[path], **{field: int(value)})
    try:
        yield
    finally:
        decode.LAUNCH.update(saved)


for name in VARIANTS:
    with variant(name):
        errors = bench.check_against_reference(FORMATS, shapes=((1, 3000), (2, 5000)))
        print(f"{name} errors vs reference:", {k: f"{v:.1e}" for k, v in errors.items()}, flush=True)

scaling = bench.HEAD_DIM ** -0.5
for batch, context in CASES:
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    keys = torch.randn(batch, bench.KV_HEADS, context, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    values = torch.randn_like(keys)
    sdpa = bench._time_us(lambda: torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, scale=scaling, enable_gqa=True))
    print(f"batch {batch} context {context}: fp16 SDPA {sdpa:.2f} us", flush=True)
    del keys, values
    for fmt in FORMATS:
        layer = bench.make_layer(fmt, "cuda")
        bench.fill_layer(layer, batch, context, "cuda")
        run = lambda: kernels.attend_decode(layer, query, None, scaling, None, observe=False)  # noqa: E731
        for name in VARIANTS:
            with variant(name):
                us = bench._time_us(run)
            print(f"  {fmt:14} {name:60} {us:9.2f} us  {sdpa / us:5.2f}x SDPA", flush=True)
        del layer
        torch.cuda.empty_cache()
