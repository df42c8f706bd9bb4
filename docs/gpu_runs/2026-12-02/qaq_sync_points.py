"""Host-device sync points in one QAQ decode step's bookkeeping after the fused kernel (what
kernels.observe_key_tail hands on: weights over the key tail, then the encode of the token whose window closed),
counted on the CPU through a TorchDispatchMode: ops whose result the host must read (item / int / bool of a tensor,
nonzero) and indexing by boolean masks (a nonzero inside, on CUDA). Each one makes the host wait for the GPU.
  OMP_NUM_THREADS=1 python docs/gpu_runs/2026-12-02/qaq_sync_points.py"""
import collections
import inspect
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, "tests")
import kernel_checks  # noqa: E402

READ_BY_HOST = ("_local_scalar_dense", "nonzero", "masked_select", "is_nonzero")


class SyncPoints(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        if name in READ_BY_HOST:
            self.ops[name] += 1
        indices = args[1] if name.startswith(("index", "_index_put")) and len(args) > 1 else ()
        if any(isinstance(index, torch.Tensor) and index.dtype == torch.bool for index in indices):
            self.ops[f"{name} by a boolean mask"] += 1
        return func(*args, **(kwargs or {}))


torch.manual_seed(0)
layer = kernel_checks.CompressedLayer([kernel_checks.qaq_group([0, 1])], 2)
k, v, q = torch.randn(1, 2, 101, 64), torch.randn(1, 2, 101, 64), torch.randn(1, 8, 101, 64)
layer.update(k[:, :, :100].half(), v[:, :, :100].half())
layer.attend(q[:, :, :100], None, 0.125)
layer.update(k[:, :, 100:].half(), v[:, :, 100:].half())
state = layer.groups[0]
positions = torch.arange(state.keys.tail_start, state.keys.length)
weights = torch.rand(1, 2, 4, positions.numel())
rows = torch.full((4,), state.keys.length - 1)
last = (state.keys.length - 1,) if "last_row" in inspect.signature(state.keys.observe).parameters else ()
with SyncPoints() as count:
    for stream in (state.keys, state.values):
        stream.observe(weights, rows, positions, *last)
    state.settle()
print(f"sync points per head group and decode step: {sum(count.ops.values())} {dict(count.ops)}")
