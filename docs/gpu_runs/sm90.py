"""Compile a Triton kernel for sm_90 on a machine without a GPU (Triton 3.6 ships ptxas and cuobjdump) and read its
registers, stack and shared memory per program; used by the static-resource scripts of the runs in this folder
(put this folder on PYTHONPATH)."""
import os
import re
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


def compile_resources(kernel, signature: dict, constexprs: dict, attrs: dict, options: dict) -> tuple[int, int, int]:
    """(registers, stack bytes, shared bytes) of `kernel` compiled with triton.compile's signature, constexprs,
    attrs and options."""
    compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs),
                              target=GPUTarget("cuda", 90, 32), options=options)
    tools = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        usage = subprocess.run([os.path.join(tools, "cuobjdump"), "--dump-resource-usage", cubin.name],
                               capture_output=True, text=True).stdout
    registers, stack = (int(re.search(rf"{field}:(\d+)", usage).group(1)) for field in ("REG", "STACK"))
    return registers, stack, compiled.metadata.shared


def resources(kernel, types: dict, constants: dict, num_warps: int = 4) -> tuple[int, int, int]:
    """The same with argument `types` ("*fp16", "i32", ...; pointers 16-byte aligned) and `constants` for its
    constexpr arguments."""
    signature, constexprs, attrs = {}, {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in constants:
            signature[name], constexprs[(i,)] = "constexpr", constants[name]
        else:
            signature[name] = types[name]
            if types[name].startswith("*"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    return compile_resources(kernel, signature, constexprs, attrs, {"num_warps": num_warps})
