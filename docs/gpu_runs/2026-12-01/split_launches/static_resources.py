"""Registers, stack and shared memory per program of each decode-kernel launch, compiled for sm_90 on a machine
without a GPU (Triton ships ptxas and cuobjdump), with the specializations a CUDA launch would get (16-byte aligned
pointers, integers divisible by 16). Occupancy follows: resident warps per multiprocessor <= 65536 / (32 x registers).

  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python static_resources.py kivi2 [mma|mma_batched] [path/to/decode.py]
"""
import importlib.util
import os
import sys

from sm90 import compile_resources, decode_launches

from kvtool import bench

fmt = sys.argv[1]
launch = sys.argv[2] if len(sys.argv) > 2 else "mma"
spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", sys.argv[3] if len(sys.argv) > 3 else
                                              os.path.join(os.path.dirname(bench.__file__), "runtime/kernels/decode.py"))
decode = importlib.util.module_from_spec(spec)
sys.modules["kvtool.runtime.kernels.decode"] = decode
spec.loader.exec_module(decode)
decode.LAUNCH["mma"] = decode.LAUNCH[launch]
layer = bench.make_layer(fmt, "cpu")
bench.fill_layer(layer, 1, 20000, "cpu")  # long enough for a fast launch at either shape
for kwargs, (signature, constants, attrs, options) in decode_launches(decode, layer):
    registers, stack, shared = compile_resources(decode._decode_split_kernel, signature, constants, attrs, options)
    warps = min(65536 // (32 * registers), 228 * 1024 // max(shared, 1) * options["num_warps"], 64)
    print(f"{fmt} {launch} {'fast' if kwargs['FAST'] else 'generic'} tiles: {registers} registers, stack {stack}, "
          f"{shared} B shared, {options}: <= {warps // options['num_warps']} programs "
          f"({warps // options['num_warps'] * options['num_warps']} warps) per multiprocessor", flush=True)
