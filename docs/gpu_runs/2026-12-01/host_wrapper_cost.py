"""Host (Python) time of the decode kernels' wrapper per layer call (docs/gpu.md, "End to end"): the two Triton
launches are replaced by no-ops, so this is what the host spends per layer around them (Triton's own launch cost
excluded), on the CPU with CPU tensors.

    OMP_NUM_THREADS=1 .venv/bin/python docs/gpu_runs/2026-12-01/host_wrapper_cost.py kivi2,duo50+kivi2
"""
import sys
import time

import torch

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode


class NoLaunch:
    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


decode._decode_split_kernel = NoLaunch()
decode._merge_partials_kernel = NoLaunch()
torch.set_num_threads(1)
for name in sys.argv[1].split(","):
    layer = bench.make_layer(name, "cpu")
    bench.fill_layer(layer, 1, 4096, "cpu")
    query = torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM).half()
    for _ in range(50):
        kernels.attend_decode(layer, query, None, bench.HEAD_DIM**-0.5, None)
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        kernels.attend_decode(layer, query, None, bench.HEAD_DIM**-0.5, None)
    print(f"{name}: {(time.perf_counter() - start) / calls * 1e6:.1f} us per layer call (wrapper only)")
