"""Compile a Triton kernel for sm_90 on a machine without a GPU (Triton 3.6 ships ptxas and cuobjdump) and read its
registers, stack and shared memory per program, or its SASS; used by the static scripts of the runs in this folder
(put this folder on PYTHONPATH)."""
import collections
import os
import re
import subprocess
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


def compile_sm90(kernel, signature: dict, constexprs: dict, attrs: dict, options: dict):
    """`kernel` compiled with triton.compile's signature, constexprs, attrs and options, for an H100/H200."""
    return triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs),
                          target=GPUTarget("cuda", 90, 32), options=options)


def cuobjdump(compiled, flag: str) -> str:
    tools = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        return subprocess.run([os.path.join(tools, "cuobjdump"), flag, cubin.name], capture_output=True,
                              text=True).stdout


def compile_resources(kernel, signature: dict, constexprs: dict, attrs: dict, options: dict) -> tuple[int, int, int]:
    """(registers, stack bytes, shared bytes) of `kernel` compiled as compile_sm90 compiles it."""
    compiled = compile_sm90(kernel, signature, constexprs, attrs, options)
    usage = cuobjdump(compiled, "--dump-resource-usage")
    registers, stack = (int(re.search(rf"{field}:(\d+)", usage).group(1)) for field in ("REG", "STACK"))
    return registers, stack, compiled.metadata.shared


def main_loop(sass: str) -> collections.Counter:
    """Opcodes of the longest span under a backward branch of SASS text (the main loop; its inner branches and
    loops included), counted."""
    lines = [(int(m.group(1), 16), m.group(2)) for m in re.finditer(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    spans = [(int(target, 16), at) for at, text in lines
             for target in re.findall(r"BRA\b.*?(0x[0-9a-f]+)", text) if int(target, 16) < at]
    first, last = max(spans, key=lambda span: span[1] - span[0])
    return collections.Counter(re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0]
                               for at, text in lines if first <= at <= last)


POINTER = {torch.float16: "*fp16", torch.float32: "*fp32", torch.uint8: "*u8", torch.int32: "*i32",
           torch.int16: "*i16", torch.int64: "*i64", torch.bool: "*i1", torch.int8: "*i8"}


def launch_signature(kernel, args: tuple, kwargs: dict, per_step: list[str]) -> tuple[dict, dict, dict, dict]:
    """(signature, constexprs, attrs, options) of a launch `kernel[grid](*args, **kwargs)` as a CUDA launch would
    specialize it: 16-byte aligned pointers, integers divisible by 16 or equal to 1 (but those in `per_step`)."""
    signature, constants, attrs = {}, {}, {}
    for i, (name, value) in enumerate(zip(kernel.arg_names, args)):
        specialized = name not in per_step
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
    kwargs = dict(kwargs)
    options = {key: kwargs.pop(key) for key in ("num_warps", "num_stages")}
    if kwargs.get("maxnreg") is not None:  # decode.Launch.max_registers
        options["maxnreg"] = kwargs["maxnreg"]
    kwargs.pop("maxnreg", None)
    for name in kernel.arg_names[len(args):]:
        signature[name] = "constexpr"
        constants[(kernel.arg_names.index(name),)] = kwargs[name]
    return signature, constants, attrs, options


def decode_launches(decode, layer, multiprocessors: int = 132) -> list[tuple[dict, tuple]]:
    """The split-kernel launches of one decode step of `layer` (a CompressedLayer on the CPU) through the decode
    module `decode` (kvtool.runtime.kernels.decode, or a copy of it), as kwargs and launch_signature's four, for a
    GPU of `multiprocessors` multiprocessors; nothing runs."""
    from kvtool import bench
    from kvtool.runtime.kernels import attend_decode

    kernel, merge, launches = decode._decode_split_kernel, decode._merge_partials_kernel, []
    decode._target_programs = lambda device, shape: shape.programs_per_sm * multiprocessors
    decode._decode_split_kernel = type("Capture", (), {"__getitem__": lambda self, grid: lambda *a, **k:
                                                       launches.append((a, k))})()
    decode._merge_partials_kernel = type("Skip", (), {"__getitem__": lambda self, grid: lambda *a, **k: None})()
    try:
        attend_decode(layer, torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16), None, 0.088, None)
    finally:
        decode._decode_split_kernel, decode._merge_partials_kernel = kernel, merge
    return [(kwargs, launch_signature(kernel, args, kwargs, decode._PER_STEP)) for args, kwargs in launches]


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
