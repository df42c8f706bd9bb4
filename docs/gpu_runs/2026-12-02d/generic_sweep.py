"""Device-only: the decode kernel's generic tiles (layouts without a fast path: KVQuant, CQ) before and after the
fourth session of 2026-12-02, on the same filled caches: base = .g4/base.py (the kernel of a962d9c), now = the
working tree's with each launch shape given (bench.using_launch specs, "auto" = decode.LAUNCH as it is); errors
against the reference path first.
  python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto,generic:16/4/1 kvquant3,cq4 1x32768,1x131072,16x32768"""
import importlib.util
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode

SPECS, FORMATS = sys.argv[1].split(","), sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]
modules = {"now": decode}
spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", ".g4/base.py")
modules["base"] = importlib.util.module_from_spec(spec)
sys.modules["kvtool.runtime.kernels.decode"] = modules["base"]
spec.loader.exec_module(modules["base"])


def use(name):
    sys.modules["kvtool.runtime.kernels.decode"] = modules[name]


for name in ("base", "now"):
    use(name)
    print(f"{name} errors vs reference:",
          {k: f"{v:.1e}" for k, v in bench.check_against_reference(FORMATS).items()}, flush=True)

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
        run = lambda: kernels.attend_decode(layer, query, None, scaling, None)  # noqa: E731
        for name, specs in (("base", ["auto"]), ("now", SPECS)):
            use(name)
            for launch in specs:
                with bench.using_launch(launch):
                    us = bench._time_us(run)
                print(f"  {fmt:10} {name:4} {launch:20} {us:9.2f} us  {sdpa / us:5.2f}x SDPA", flush=True)
        del layer
        torch.cuda.empty_cache()
