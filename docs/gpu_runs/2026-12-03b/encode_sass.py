"""KVQuant's encode of one token (quantize._nuq_encode, the bench's kvquant3 shapes) compiled for sm_90 here, for
the quantize module of .g4/base_quantize.py and the working tree's, with 4 warps and 1: registers, SASS instructions
per warp, barriers (BAR) and shuffles (SHFL). The kernel has no loop but the codes' 7 boundaries.
  PYTHONPATH=/tmp/t36:.:docs/gpu_runs python3 docs/gpu_runs/2026-12-03b/encode_sass.py"""
import collections
import importlib.util
import re

import torch
from sm90 import compile_sm90, cuobjdump, launch_signature

from kvtool.runtime.kernels import quantize

spec = importlib.util.spec_from_file_location("base_quantize", ".g4/base_quantize.py")
base = importlib.util.module_from_spec(spec)
spec.loader.exec_module(base)

x = torch.randn(1, 8, 1, 128).half()
boundaries = torch.randn(7).sort().values
rope = (torch.ones(1, 128), torch.zeros(1, 128))
mid, half = torch.zeros(8, 128), torch.ones(8, 128)
calls = {"keys": lambda m: m.nuq_encode(x, 3, boundaries, 21, torch.int16, rope=rope, midpoint=mid, half_range=half),
         "values": lambda m: m.nuq_encode(x, 3, boundaries, 12, torch.int16)}
for kind, call in calls.items():
    for name, module in (("base", base), ("now", quantize)):
        kernel, captured = module._nuq_encode, []
        module._nuq_encode = type("Capture", (), {"__getitem__": lambda self, grid: lambda *a, **k:
                                                  captured.append((a, k))})()
        try:
            call(module)
        finally:
            module._nuq_encode = kernel
        args, kwargs = captured[0]
        for warps in (4, 1):
            launch = {**kwargs, "num_warps": warps, "num_stages": 1}
            signature, constants, attrs, _ = launch_signature(kernel, args, launch, ["x_sb", "x_sh", "tokens"])
            compiled = compile_sm90(kernel, signature, constants, attrs, {"num_warps": warps})
            sass = cuobjdump(compiled, "-sass")
            ops = collections.Counter(re.sub(r"^@!?U?P\w+\s+", "", t).split()[0].split(".")[0]
                                      for t in re.findall(r"/\*[0-9a-f]{4,}\*/\s+([^;]*);", sass))
            registers = re.search(r"REG:(\d+)", cuobjdump(compiled, "--dump-resource-usage")).group(1)
            print(f"{kind:6s} {name} {warps} warps: {registers} registers, {sum(ops.values())} instructions, "
                  f"BAR {ops['BAR']}, SHFL {ops['SHFL']}, shared {compiled.metadata.shared} B", flush=True)
