"""CPU (no GPU needed): the aten ops other than views and allocations of one batch-1 decode step through a bench
format's layer (a layer filled with 2,048 tokens), on the fused path's host side with the decode kernels not run,
by op and by the kvtool function that issued them; on CUDA each is about one kernel launch.
  OMP_NUM_THREADS=1 python docs/gpu_runs/2026-12-02e/qaq_host_ops.py qaq4"""
import collections, sys, traceback
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.cache import CompressedCache
from kvtool.runtime.kernels import decode

noop = type("K", (), {"__getitem__": lambda self, grid: (lambda *a, **k: None)})()
decode._decode_split_kernel = noop
decode._merge_partials_kernel = noop
VIEWS = {"view", "slice", "select", "unsqueeze", "squeeze", "as_strided", "expand", "t", "transpose", "permute",
         "_unsafe_view", "alias", "detach", "unbind", "split", "reshape", "unflatten", "narrow", "_reshape_alias", "lift_fresh", "empty", "empty_strided", "resize_"}

class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__(); self.ops = collections.Counter(); self.where = collections.Counter()
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        if name not in VIEWS:
            self.ops[name] += 1
            frames = [f for f in traceback.extract_stack() if "/kvtool/" in f.filename]
            if frames:
                f = frames[-1]; self.where[f"{f.filename.split('kvtool/')[-1]}:{f.name}"] += 1
        return func(*args, **(kwargs or {}))

layer = bench.make_layer(sys.argv[1], "cpu")
cache = CompressedCache([layer]); cache.reserve(2048 + 64)
bench.fill_layer(layer, 1, 2048, "cpu"); layer.fusable = True
q = torch.randn(1, 32, 1, 128).half()
def step():
    position = cache.get_seq_length()
    layer.update(torch.randn(1, 8, 1, 128).half(), torch.randn(1, 8, 1, 128).half())
    mask = (torch.arange(position + 1) <= position)[None, None, None]
    kernels.attend_decode(layer, q, mask, 0.125, None)
for _ in range(3): step()
c = Count()
with c:
    step()
groups = len(layer.groups)
print("non-view ops per layer step", sum(c.ops.values()), "per group", sum(c.ops.values()) / groups)
print(c.where.most_common(25))
print(c.ops.most_common(30))
