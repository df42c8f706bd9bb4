"""Device-only: duo50+kivi2 at batch 1 with the committed launch rule (a fast range shorter than one tile per program
goes to the generic launch) beside a variant that takes the fast launch whenever fast tiles exist; kivi2 as control.
  python3 docs/gpu_runs/2026-12-02/duo_window.py"""
import importlib.util
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels

PATH = "kvtool/runtime/kernels/decode.py"
RULE = "fast = (fast_hi - fast_lo) // block >= target"


def load(source):
    spec = importlib.util.spec_from_loader("kvtool.runtime.kernels.decode", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, PATH, "exec"), module.__dict__)
    return module


committed = open(PATH).read()
assert RULE in committed
variants = {"committed": load(committed), "fast whenever": load(committed.replace(RULE, "fast = fast_hi > fast_lo"))}
scaling = bench.HEAD_DIM ** -0.5
for context in (32768, 131072):
    query = torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
    for name in ("duo50+kivi2", "kivi2"):
        layer = bench.make_layer(name, "cuda")
        bench.fill_layer(layer, 1, context, "cuda")
        outs = {}
        for variant, module in variants.items():
            sys.modules["kvtool.runtime.kernels.decode"] = module
            us = bench._time_us(lambda: kernels.attend_decode(layer, query, None, scaling, None))
            outs[variant] = kernels.attend_decode(layer, query, None, scaling, None).float()
            print(f"{name:12s} batch 1 context {context:6d} {variant:14s} {us:8.2f} us", flush=True)
        print(f"   max difference between variants: {(outs['committed'] - outs['fast whenever']).abs().max():.2e}")
        del layer
        torch.cuda.empty_cache()
