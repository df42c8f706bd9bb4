"""Registers, stack and shared memory per program of each decode-kernel launch, compiled for sm_90 on a machine
without a GPU (Triton ships ptxas and cuobjdump), with the specializations a CUDA launch would get (16-byte aligned
pointers, integers divisible by 16). Occupancy follows: resident warps per multiprocessor <= 65536 / (32 x registers).

  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python static_resources.py kivi2 [mma|mma_batched] [path/to/decode.py]
"""
import importlib.util
import os
import sys

import torch
from sm90 import compile_resources

from kvtool import bench
from kvtool.runtime.kernels import attend_decode

fmt = sys.argv[1]
launch = sys.argv[2] if len(sys.argv) > 2 else "mma"
spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", sys.argv[3] if len(sys.argv) > 3 else
                                              os.path.join(os.path.dirname(bench.__file__), "runtime/kernels/decode.py"))
decode = importlib.util.module_from_spec(spec)
sys.modules["kvtool.runtime.kernels.decode"] = decode
spec.loader.exec_module(decode)
decode.LAUNCH["mma"] = decode.LAUNCH[launch]
decode._target_programs = lambda device, shape: shape.programs_per_sm * 132  # an H200's multiprocessors
kernel = decode._decode_split_kernel
launches = []
decode._decode_split_kernel = type("Capture", (), {"__getitem__": lambda self, grid: lambda *a, **k: launches.append((a, k))})()
decode._merge_partials_kernel = type("Skip", (), {"__getitem__": lambda self, grid: lambda *a, **k: None})()
layer = bench.make_layer(fmt, "cpu")
bench.fill_layer(layer, 1, 20000, "cpu")  # long enough for a fast launch at either shape
attend_decode(layer, torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16), None, 0.088, None)

POINTER = {torch.float16: "*fp16", torch.float32: "*fp32", torch.uint8: "*u8", torch.int32: "*i32",
           torch.int16: "*i16", torch.int64: "*i64", torch.bool: "*i1", torch.int8: "*i8"}
for args, kwargs in launches:
    signature, constants, attrs = {}, {}, {}
    for i, (name, value) in enumerate(zip(kernel.arg_names, args)):
        specialized = name not in decode._PER_STEP
        if isinstance(value, torch.Tensor):
            signature[name] = POINTER[value.dtype]
            if value.data_ptr() % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, int) and specialized and value == 1:
            signature[name], constants[(i,)] = "constexpr", 1
        else:
            signature[name] = "i32" if isinstance(value, int) else "fp32"
            if isinstance(value, int) and specialized and value % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    options = {key: kwargs.pop(key) for key in ("num_warps", "num_stages")}
    for name in kernel.arg_names[len(args):]:
        signature[name] = "constexpr"
        constants[(kernel.arg_names.index(name),)] = kwargs[name]
    registers, stack, shared = compile_resources(kernel, signature, constants, attrs, options)
    warps = min(65536 // (32 * registers), 228 * 1024 // max(shared, 1) * options["num_warps"], 64)
    print(f"{fmt} {launch} {'fast' if kwargs['FAST'] else 'generic'} tiles: {registers} registers, stack {stack}, "
          f"{shared} B shared, {options}: <= {warps // options['num_warps']} programs "
          f"({warps // options['num_warps'] * options['num_warps']} warps) per multiprocessor", flush=True)
