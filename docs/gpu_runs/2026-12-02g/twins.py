"""`kvtool bench --part check`'s twins of a format (one filled by the quantize-on-append kernels, one by the codecs'
PyTorch encode) compared store by store, then three decode steps (a token appended to both, attention fused and by the
reference path), as the check does. On a GPU if there is one; else on the CPU under Triton's interpreter, where
MULTIPROCESSORS splits the context as a GPU of that many would (the kernels' CPU default is 8 programs in all).
  python3 docs/gpu_runs/2026-12-02g/twins.py kivi4 2 5000                                          (device)
  TRITON_INTERPRET=1 OMP_NUM_THREADS=1 python docs/gpu_runs/2026-12-02g/twins.py kivi4 2 5000 132  (CPU)"""
import contextlib
import sys

import torch

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode

device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cpu":
    kernels.available = lambda x: True  # the interpreter runs the kernels on CPU tensors
    if len(sys.argv) > 4:
        decode._target_programs = lambda device, launch: launch.programs_per_sm * int(sys.argv[4])
name, batch, context = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
twins = []
for encode in (contextlib.nullcontext, kernels.pytorch_encode):
    torch.manual_seed(0)
    twins.append(bench.make_layer(name, device))
    with encode():
        bench.fill_layer(twins[-1], batch, context, device)
twins[1].fusable = False  # read by the reference path
for g0, g1 in zip(twins[0].groups, twins[1].groups):
    for s0, s1 in ((g0.keys, g1.keys), (g0.values, g1.values)):
        for key in s0.store:
            a, b = s0.store[key].view(), s1.store[key].view()
            diff = (a.float() - b.float()).abs()
            print(type(s0.codec).__name__, key, tuple(a.shape), "differ at", int((diff > 0).sum()), "max",
                  float(diff.max()), flush=True)
        print("tail equal", torch.equal(s0.tail, s1.tail) if s0.tail is not None else None)
for step in range(3):  # as bench.check_against_reference: append a token to both twins, attend
    keys = torch.randn(batch, bench.KV_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16, device=device)
    values = torch.randn_like(keys)
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device=device).half()
    twins[0].update(keys, values)
    with kernels.pytorch_encode():
        twins[1].update(keys, values)
    fused = kernels.attend_decode(twins[0], query, None, bench.HEAD_DIM**-0.5, None).float()
    ref = twins[1].attend(query, None, bench.HEAD_DIM**-0.5).float()
    print("step", step, "fused vs reference", float((fused - ref).abs().max() / ref.abs().max()), flush=True)
