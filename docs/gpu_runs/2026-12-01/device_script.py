"""Device-only: each format's fused decode kernel beside its reference PyTorch path (CUDA events, no graphs: the
reference path copies to the device), and one decode call for Nsight Compute. Run from the repo root:
  python3 device_script.py compare million2 million4 kvquant3     # or: python3 device_script.py one kivi2"""
import sys

import torch
import triton.testing

from kvtool import bench
from kvtool.runtime import kernels

SCALE = bench.HEAD_DIM ** -0.5


def query(batch):
    return torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)


def median_us(fn):
    return triton.testing.do_bench(fn, rep=200, return_mode="median") * 1e3


if sys.argv[1] == "compare":
    for batch, context in ((1, 32768), (1, 131072), (16, 32768)):
        for name in sys.argv[2:]:
            layer = bench.make_layer(name, "cuda")
            bench.fill_layer(layer, batch, context, "cuda")
            q = query(batch)
            kernel = median_us(lambda: kernels.attend_decode(layer, q, None, SCALE, None))
            layer.fusable = False
            reference = median_us(lambda: layer.attend(q, None, SCALE))
            print(name, "batch", batch, "context", context, "kernel us", round(kernel, 1), "reference path us",
                  round(reference, 1), flush=True)
            del layer
            torch.cuda.empty_cache()
else:
    layer = bench.make_layer(sys.argv[2], "cuda")
    bench.fill_layer(layer, 1, 131072, "cuda")
    q = query(1)
    for _ in range(3):
        kernels.attend_decode(layer, q, None, SCALE, None)
    torch.cuda.synchronize()
