"""Device-only: the committed decode kernel (base, .g4/base.py) beside the working tree's (v1: fast and generic tiles
in separate launches) with several launch shapes, on the same filled caches. Run from the repo root."""
import importlib.util
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels

MODULES = {}


def use(name):
    path = {"base": ".g4/base.py", "v1": "kvtool/runtime/kernels/decode.py"}[name]
    if name not in MODULES:
        spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", path)
        MODULES[name] = importlib.util.module_from_spec(spec)
        sys.modules["kvtool.runtime.kernels.decode"] = MODULES[name]
        spec.loader.exec_module(MODULES[name])
    sys.modules["kvtool.runtime.kernels.decode"] = MODULES[name]


SHAPES = sys.argv[1].split(",")  # launches for v1's mma path
FORMATS = sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]  # batch x context
OTHER = sys.argv[4].split(",") if len(sys.argv) > 4 else []  # formats timed with auto only

for variant in ("base", "v1"):
    use(variant)
    launches = ("auto",) if variant == "base" else tuple(SHAPES)
    errs = bench.check_against_reference(FORMATS, launches=launches)
    errs.update(bench.check_against_reference(OTHER))
    print(variant, "errors vs reference:", {k: f"{v:.1e}" for k, v in errs.items()}, flush=True)

scaling = bench.HEAD_DIM ** -0.5
for batch, context in CASES:
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    keys = torch.randn(batch, bench.KV_HEADS, context, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    values = torch.randn_like(keys)
    sdpa = bench._time_us(lambda: torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, scale=scaling, enable_gqa=True))
    print(f"batch {batch} context {context}: fp16 SDPA {sdpa:.2f} us", flush=True)
    del keys, values
    for name in FORMATS + OTHER:
        layer = bench.make_layer(name, "cuda")
        bench.fill_layer(layer, batch, context, "cuda")
        run = lambda: kernels.attend_decode(layer, query, None, scaling, None)  # noqa: E731
        for variant in ("base", "v1"):
            use(variant)
            for spec in ("auto",) if variant == "base" or name in OTHER else SHAPES:
                with bench.using_launch(spec):
                    us = bench._time_us(run)
                print(f"  {name:12} {variant:4} {spec:16} {us:9.2f} us  {sdpa / us:5.2f}x SDPA  "
                      f"{layer.nbytes() / us / 1e6:5.2f} TB/s", flush=True)
        del layer
        torch.cuda.empty_cache()
