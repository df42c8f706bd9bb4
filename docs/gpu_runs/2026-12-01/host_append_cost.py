"""Host cost of appending one decode token to a layer's cache (`CompressedLayer.update`, docs/gpu.md "End to end"):
time per call and the aten ops it dispatches, on the CPU with CPU tensors. On CUDA each op is a host dispatch (and a
launch where the tensors live on the GPU); the CPU path also runs the quantization itself, which CUDA does in one
Triton launch (kernels/quantize.py), so the times here are the CPU path's, the op counts a proxy for the GPU's.

    OMP_NUM_THREADS=1 .venv/bin/python docs/gpu_runs/2026-12-01/host_append_cost.py kivi2,duo50+kivi2
"""
import collections
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from kvtool import bench


class CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


torch.set_num_threads(1)
for name in sys.argv[1].split(","):
    layer = bench.make_layer(name, "cpu")
    bench.fill_layer(layer, 1, 4096, "cpu")
    token = torch.randn(1, bench.KV_HEADS, 1, bench.HEAD_DIM).half()

    def step() -> None:
        layer.update(token, token)
        for state in layer.groups:  # what the attention does after reading the chunk
            state.settle()

    for _ in range(300):
        step()
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        step()
    seconds = (time.perf_counter() - start) / calls
    counter = CountOps()
    with counter:
        for _ in range(64):
            step()
    print(f"{name}: {seconds * 1e6:.1f} us and {sum(counter.ops.values()) / 64:.1f} aten ops per layer append")
