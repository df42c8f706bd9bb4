"""Counting the aten ops a piece of host code dispatches (on CUDA each is a host dispatch and most a launch), with a
Triton kernel's launch stubbed out (Triton's interpreter dispatches aten ops of its own); used by the op-count
scripts of the runs in this folder (put this folder on PYTHONPATH)."""
import collections

from torch.utils._python_dispatch import TorchDispatchMode


class CountOps(TorchDispatchMode):
    """Within the block, `ops` counts each aten op by name."""

    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


class NoLaunch:
    """Stands in for a Triton kernel: `kernel[grid](...)` does nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None
