"""CPU, under Triton's interpreter: `kvtool bench --part check`'s twins of a format (one filled by the
quantize-on-append kernels, one by the codecs' PyTorch encode) compared store by store, then three decode steps (a
token appended to both, attention fused and by the reference path), as the check does on a GPU. MULTIPROCESSORS: split
the context as a GPU of that many would (the kernels' CPU default is 8 programs in all).
  TRITON_INTERPRET=1 OMP_NUM_THREADS=1 python docs/gpu_runs/2026-12-02g/kivi4_twins_interpreted.py kivi4 2 5000 [132]"""
import sys, torch
from kvtool import bench
from kvtool.runtime import kernels
kernels.available = lambda x: True  # the interpreter runs the kernels on CPU tensors
from kvtool.runtime.kernels import decode
if len(sys.argv) > 4:  # split the context as a GPU of this many multiprocessors would
    decode._target_programs = lambda device, launch: launch.programs_per_sm * int(sys.argv[4])
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
for step in range(3):  # as bench.check_against_reference: append a token to both twins, attend
    keys = torch.randn(batch, bench.KV_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16)
    values = torch.randn_like(keys)
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM).half()
    twins[0].update(keys, values)
    with kernels.pytorch_encode():
        twins[1].update(keys, values)
    fused = kernels.attend_decode(twins[0], query, None, bench.HEAD_DIM**-0.5, None).float()
    ref = twins[1].attend(query, None, bench.HEAD_DIM**-0.5).float()
    print("step", step, "fused vs reference", float((fused - ref).abs().max() / ref.abs().max()), flush=True)
