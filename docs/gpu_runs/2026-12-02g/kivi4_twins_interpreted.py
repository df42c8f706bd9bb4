"""CPU, under Triton's interpreter: `kvtool bench --part check`'s twins of a format (one filled by the
quantize-on-append kernels, one by the codecs' PyTorch encode) compared store by store, then one decode step fused
against the reference path, as the check does on a GPU.
  TRITON_INTERPRET=1 OMP_NUM_THREADS=1 python docs/gpu_runs/2026-12-02g/kivi4_twins_interpreted.py kivi4 2 5000"""
import sys, torch
from kvtool import bench
from kvtool.runtime import kernels
kernels.available = lambda x: True  # the interpreter runs the kernels on CPU tensors
name, batch, context = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
twins = []
for encode in (__import__("contextlib").nullcontext, kernels.pytorch_encode):
    torch.manual_seed(0)
    twins.append(bench.make_layer(name, "cpu"))
    with encode():
        bench.fill_layer(twins[-1], batch, context, "cpu")
for (g0, g1) in zip(twins[0].groups, twins[1].groups):
    for s0, s1 in ((g0.keys, g1.keys), (g0.values, g1.values)):
        for key in s0.store:
            a, b = s0.store[key].view(), s1.store[key].view()
            diff = (a.float() - b.float()).abs()
            print(type(s0.codec).__name__, key, tuple(a.shape), "differ at", int((diff > 0).sum()), "max", float(diff.max()), flush=True)
        print("tail equal", torch.equal(s0.tail, s1.tail) if s0.tail is not None else None)
query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM).half()
fused = kernels.attend_decode(twins[0], query, None, bench.HEAD_DIM**-0.5, None).float()
ref = twins[1].attend(query, None, bench.HEAD_DIM**-0.5).float()
print("fused vs reference", float((fused - ref).abs().max() / ref.abs().max()))
