"""Registers, shared memory and SASS instructions of the decode kernel's adc fast loop (MILLION formats), compiled for
sm_90 on a machine without a GPU (docs/gpu_runs/sm90.py; not timed), from a copy of decode.py given by path, for
launch shapes BLOCK_N/WARPS, of one decode step at 2,000 tokens.
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python docs/gpu_runs/2026-12-03c/adc_counts.py .g4/base.py million2 16/2"""
import importlib.util
import re
import sys

from sm90 import compile_sm90, cuobjdump, decode_launches, main_loop

spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", sys.argv[1])
decode = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(decode)

from kvtool import bench  # noqa: E402  (after the copy took decode's name)

names = decode._decode_split_kernel.arg_names
for fmt in sys.argv[2].split(","):
    layer = bench.make_layer(fmt, "cpu")
    bench.fill_layer(layer, 1, 2000, "cpu")
    # 8 multiprocessors: enough positions per program for a fast launch at 2,000 tokens
    for kwargs, (signature, constants, attrs, options) in decode_launches(decode, layer, 8):
        if not kwargs["FAST"]:
            continue
        for shape in sys.argv[3:]:
            block_n, warps = (int(n) for n in shape.split("/"))
            compiled = compile_sm90(decode._decode_split_kernel, signature,
                                    {**constants, (names.index("BLOCK_N"),): block_n}, attrs,
                                    {**options, "num_warps": warps})
            loop = main_loop(cuobjdump(compiled, "-sass"))
            registers = re.search(r"REG:(\d+)", cuobjdump(compiled, "--dump-resource-usage")).group(1)
            count = sum(loop.values())
            print(f"{fmt} {shape}: {registers} registers, {compiled.metadata.shared} B shared; {count} per tile and "
                  f"warp, {count * warps / block_n:.1f} per position; {dict(loop.most_common(10))}", flush=True)
