"""Registers and stack per thread of the merge kernel at a few tile shapes, compiled for sm_90 on a machine without a
GPU (Triton 3.6 ships ptxas and cuobjdump), as ../2026-12-01/split_launches/static_resources.py does for the split
kernel. The kernel file is an argument, so the version before the merge change can be compiled too:
  git show 3dbdd05:kvtool/runtime/kernels/decode.py > /tmp/old_decode.py
  PYTHONPATH=<triton 3.6>:. python merge_static_resources.py /tmp/old_decode.py 128,256,512 128
  PYTHONPATH=<triton 3.6>:. python merge_static_resources.py kvtool/runtime/kernels/decode.py 256,512,1024 32
(arguments: kernel file, BLOCK_PARTS values, BLOCK_D; D = 128, 4 query heads per KV head, 4 warps)"""
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", sys.argv[1])
decode = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = decode
spec.loader.exec_module(decode)
kernel = decode._merge_partials_kernel
tools = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")
TYPES = {"part_o_ptr": "*fp32", "part_ml_ptr": "*fp32", "head_index_ptr": "*i32", "out_ptr": "*fp16", "out_sb": "i32",
         "out_sh": "i32", "lse_ptr": "*fp32", "lse_sb": "i32", "num_parts": "i32"}
for block in map(int, sys.argv[2].split(",")):
    values = {"HEADS": 4, "PER_KV": 4, "BLOCK_PARTS": block, "D": 128, "BLOCK_D": int(sys.argv[3]), "HAS_LSE": False}
    signature, constants, attrs = {}, {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in values:
            signature[name], constants[(i,)] = "constexpr", values[name]
        else:
            signature[name] = TYPES[name]
            if TYPES[name].startswith("*"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constants, attrs=attrs),
                              target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        usage = subprocess.run([os.path.join(tools, "cuobjdump"), "--dump-resource-usage", cubin.name],
                               capture_output=True, text=True).stdout
    registers, stack = (re.search(rf"{field}:(\d+)", usage).group(1) for field in ("REG", "STACK"))
    tile = f"[{block}, {values['BLOCK_D'] if 'BLOCK_D' in kernel.arg_names else 128}]"
    print(f"{sys.argv[1]}: tile {tile}: {registers} registers, {stack} B stack per thread", flush=True)
