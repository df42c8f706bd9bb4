"""kivi4's twins on the CPU, one encoded by minmax_quantize as it was (exact division: the CPU's), one with the scale
computed as PyTorch on CUDA computed it (a multiply by 1/levels): stores compared, then three decode steps by the
reference path, as `kvtool bench --part check` does.  OMP_NUM_THREADS=2 python docs/gpu_runs/2026-12-02h/reciprocal_twins.py
"""
import torch
from kvtool import bench
from kvtool.runtime import packing
orig = packing.minmax_quantize
def recip(x, bits, dim):
    levels = (1 << bits) - 1
    x = x.float()
    true_lo, hi = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    lo = packing._round_fp16(true_lo, down=True)
    scale = packing._round_fp16(((hi - lo.float()) * (1.0 / levels)).clamp_min(1e-6), down=False)
    codes = ((x - lo.float()) / scale.float()).round().clamp(0, levels).to(torch.uint8)
    return codes, scale, lo
import kvtool.runtime.kivi as kivi
name, batch, context = "kivi4", 2, 5000
twins = []
for q in (orig, recip):
    kivi.minmax_quantize = q
    torch.manual_seed(0)
    twins.append(bench.make_layer(name, "cpu")); bench.fill_layer(twins[-1], batch, context, "cpu")
for g0, g1 in zip(twins[0].groups, twins[1].groups):
    for s0, s1 in ((g0.keys, g1.keys), (g0.values, g1.values)):
        for key in s0.store:
            a, b = s0.store[key].view(), s1.store[key].view()
            print(key, int((a.float() != b.float()).sum()))
for step in range(3):
    keys = torch.randn(batch, bench.KV_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16)
    values = torch.randn_like(keys)
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM).half()
    outs = []
    for t, q in zip(twins, (orig, recip)):
        kivi.minmax_quantize = q
        outs.append(t.update(keys, values)[0].attend(query, None, bench.HEAD_DIM**-0.5).float())
    print(step, float((outs[0]-outs[1]).abs().max()/outs[1].abs().max()), float(outs[1].abs().max()))
