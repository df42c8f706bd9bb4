"""Device-only: base (.g4/base.py, the committed kernel) beside the working tree's decode kernel with launch shapes
forced on both scalar-code paths (mma, mma_batched) or left to the rule (auto), on the same filled caches."""
import dataclasses
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
    return MODULES[name]


def timed(decode, spec, run):
    saved = dict(decode.LAUNCH)
    if spec != "auto":
        shape = dict(zip(("block_n", "num_warps", "num_stages", "programs_per_sm"), map(int, spec.split("/"))))
        for path in [p for p in ("mma", "mma_batched") if p in decode.LAUNCH]:
            decode.LAUNCH[path] = dataclasses.replace(decode.LAUNCH[path], **shape)
    try:
        return bench._time_us(run)
    finally:
        decode.LAUNCH.update(saved)


SHAPES = sys.argv[1].split(",")
FORMATS = sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]
OTHER = sys.argv[4].split(",") if len(sys.argv) > 4 else []
OTHER_CASES = [(1, 131072), (16, 32768)]

v1 = use("v1")
print("v1 errors vs reference:", {k: f"{v:.1e}" for k, v in bench.check_against_reference(FORMATS + OTHER).items()},
      flush=True)
saved = dict(v1.LAUNCH)
v1.LAUNCH["mma"] = v1.LAUNCH["mma_batched"]
print("v1 batched shape errors:", {k: f"{v:.1e}" for k, v in bench.check_against_reference(FORMATS).items()},
      flush=True)
v1.LAUNCH.update(saved)

scaling = bench.HEAD_DIM ** -0.5
for batch, context in CASES:
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    keys = torch.randn(batch, bench.KV_HEADS, context, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    values = torch.randn_like(keys)
    sdpa = bench._time_us(lambda: torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, scale=scaling, enable_gqa=True))
    print(f"batch {batch} context {context}: fp16 SDPA {sdpa:.2f} us", flush=True)
    del keys, values
    for name in FORMATS + (OTHER if (batch, context) in OTHER_CASES else []):
        layer = bench.make_layer(name, "cuda")
        bench.fill_layer(layer, batch, context, "cuda")
        run = lambda: kernels.attend_decode(layer, query, None, scaling, None)  # noqa: E731
        for variant in ("base", "v1"):
            decode = use(variant)
            for spec in ("auto",) if variant == "base" or name in OTHER else SHAPES:
                us = timed(decode, spec, run)
                print(f"  {name:12} {variant:4} {spec:12} {us:9.2f} us  {sdpa / us:5.2f}x SDPA  "
                      f"{layer.nbytes() / us / 1e6:5.2f} TB/s", flush=True)
        del layer
        torch.cuda.empty_cache()
