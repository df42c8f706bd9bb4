"""Static (CPU, sm_90 compile with Triton 3.6): the fast mma launch of a format with its registers per thread capped
(decode.Launch.max_registers, ptxas .maxnreg): registers, stack, resident programs, and the main loop's instructions
(local loads and stores = spills) per tile and warp.
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python docs/gpu_runs/2026-12-02h/register_caps.py kivi2 0,96,80,64"""
import dataclasses
import re
import sys

from sm90 import compile_sm90, cuobjdump, decode_launches, main_loop

from kvtool import bench
from kvtool.runtime.kernels import decode

fmt, caps = sys.argv[1], [int(c) for c in sys.argv[2].split(",")]
path = sys.argv[3] if len(sys.argv) > 3 else "mma"
layer = bench.make_layer(fmt, "cpu")
bench.fill_layer(layer, 1, 20000, "cpu")
for cap in caps:
    decode.LAUNCH["mma"] = dataclasses.replace(decode.LAUNCH[path], max_registers=cap)
    for kwargs, (signature, constants, attrs, options) in decode_launches(decode, layer):
        if not kwargs["FAST"]:
            continue
        compiled = compile_sm90(decode._decode_split_kernel, signature, constants, attrs, options)
        usage = cuobjdump(compiled, "--dump-resource-usage")
        registers, stack = (int(re.search(rf"{f}:(\d+)", usage).group(1)) for f in ("REG", "STACK"))
        loop = main_loop(cuobjdump(compiled, "-sass"))
        warps = min(65536 // (32 * registers) // options["num_warps"] * options["num_warps"], 64)
        spills = sum(n for op, n in loop.items() if op.startswith(("LDL", "STL")))
        print(f"{fmt} {path} cap {cap}: {registers} registers, stack {stack}, {compiled.metadata.shared} B shared, "
              f"<= {warps // options['num_warps']} programs of {options['num_warps']} warps; loop "
              f"{sum(loop.values())} instructions, {spills} local loads/stores", flush=True)
