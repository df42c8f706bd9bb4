"""Device-only: KVQuant's encode of one appended token (quantize.nuq_encode: keys with RoPE undone and 21 outlier
slots, values with 12, the bench's kvquant3 shapes) with the quantize module of .g4/base_quantize.py ("base") and the
working tree's ("now"), each launched with 8, 4 (Triton's default), 2 and 1 warps; results compared with base's
first.
  python3 docs/gpu_runs/2026-12-03b/encode_ab.py 1,16"""
import importlib.util
import sys

import torch

from kvtool import bench
from kvtool.runtime.kernels import quantize

spec = importlib.util.spec_from_file_location("base_quantize", ".g4/base_quantize.py")
base = importlib.util.module_from_spec(spec)
spec.loader.exec_module(base)
modules = {"base": base, "now": quantize}


class Warps:
    """A kernel launched with `warps` warps wherever its module launches it."""

    def __init__(self, kernel, warps):
        self.kernel, self.warps = kernel, warps

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.kernel[grid](*args, num_warps=self.warps, **kwargs)


torch.manual_seed(0)
bits, heads, dim = 3, bench.KV_HEADS, bench.HEAD_DIM
boundaries = torch.randn(7).sort().values.cuda()
mid, half = torch.randn(heads, dim).cuda(), torch.rand(heads, dim).cuda() + 1
for batch in (int(b) for b in sys.argv[1].split(",")):
    x = torch.randn(batch, heads, 1, dim, device="cuda", dtype=torch.float16) * 2
    angle = torch.rand(1, dim, device="cuda") * 6.28
    rope = (angle.cos(), angle.sin())
    calls = {"keys": lambda m: m.nuq_encode(x, bits, boundaries, 21, torch.int16, rope=rope, midpoint=mid,
                                            half_range=half),
             "values": lambda m: m.nuq_encode(x, bits, boundaries, 12, torch.int16)}
    for kind, call in calls.items():
        reference = call(base)
        for name, module in modules.items():
            kernel = module._nuq_encode
            for warps in (8, 4, 2, 1):
                module._nuq_encode = Warps(kernel, warps)
                out = call(module)
                same = all(torch.equal(out[k], reference[k]) for k in reference)
                us = bench._time_us(lambda: call(module))
                print(f"batch {batch} {kind:6s} {name} {warps} warps: {us:7.2f} us, equal to base: {same}",
                      flush=True)
            module._nuq_encode = kernel
