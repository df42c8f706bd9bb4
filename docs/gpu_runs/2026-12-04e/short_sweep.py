"""Device-only: decode attention of one layer under variants of the split policy, on the same filled caches
(median of CUDA-graph replays, as `kvtool bench --part attention`); errors against the reference path first.
  python3 short_sweep.py VARIANT[,VARIANT...] FORMAT[,FORMAT...] BxT[,BxT...]
Variants: old (fast tiles only when they fill the GPU's programs), min64 / min32 (decode.FAST_MIN_TILES),
two (any split at least two tiles), generic (no fast tiles: codebooks decoded into fp16 tiles, not ADC), each
optionally with @SPEC, a bench.using_launch spec (e.g. generic@adc:16/4/1/8).
Ran (call 3) on a working tree where the minimum was the module constant decode.FAST_MIN_TILES, for every path;
committed as `Launch.fast_min_tiles`, for "mma" alone (split_sweep.py sets such fields)."""
import contextlib
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode

VARIANTS, FORMATS = sys.argv[1].split(","), sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]
splits, fast_range = decode._splits, decode._fast_range


@contextlib.contextmanager
def variant(name):
    policy, _, spec = name.partition("@")
    saved = decode.FAST_MIN_TILES
    decode.FAST_MIN_TILES = {"old": 10**9, "min32": 32}.get(policy, 64)
    if policy == "two":
        decode._splits = lambda tiles, target, block: splits(tiles, max(1, min(target, tiles // 2)), block)
    if policy == "generic":
        decode._fast_range = lambda keys, values, first, block, fast: fast_range(keys, values, first, block, False)
    try:
        with bench.using_launch(spec or "auto"):
            yield
    finally:
        decode.FAST_MIN_TILES, decode._splits, decode._fast_range = saved, splits, fast_range


for name in VARIANTS:
    with variant(name):
        print(f"{name} errors vs reference:",
              {k: f"{v:.1e}" for k, v in bench.check_against_reference(FORMATS, shapes=((1, 1500), (1, 3000), (4, 8192))).items()}, flush=True)

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
            print(f"  {fmt:12} {name:24} {us:9.2f} us  {sdpa / us:5.2f}x SDPA", flush=True)
        del layer
        torch.cuda.empty_cache()
