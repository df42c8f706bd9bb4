"""Device-only: the decode kernel with launch shapes (bench.using_launch specs, the fifth field the register cap
decode.Launch.max_registers), checked against the reference path, then timed per case beside fp16 SDPA.
  python3 docs/gpu_runs/2026-12-02h/register_sweep.py auto,mma:32/4/3/8/96 kivi2,kivi4 1x131072,1x32768,16x32768"""
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels

SPECS, FORMATS = sys.argv[1].split(","), sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]
print("errors vs reference:", {k: f"{v:.1e}" for k, v in bench.check_against_reference(
    FORMATS, launches=tuple(SPECS)).items()}, flush=True)
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
        for launch in SPECS + SPECS[:1]:  # the first again last: drift within the run
            with bench.using_launch(launch):
                us = bench._time_us(run)
            print(f"  {fmt:10} {launch:24} {us:9.2f} us  {sdpa / us:5.2f}x SDPA", flush=True)
        del layer
        torch.cuda.empty_cache()
