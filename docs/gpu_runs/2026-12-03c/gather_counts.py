"""Registers, shared memory and SASS instructions of gather_probe.py's kernels, compiled for sm_90 on a machine
without a GPU (docs/gpu_runs/sm90.py; not timed).
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs:docs/gpu_runs/2026-12-03c python docs/gpu_runs/2026-12-03c/gather_counts.py"""
import re

import gather_probe as probe
from sm90 import compile_sm90, cuobjdump, main_loop

SIGNATURE = {"table": "*fp16", "codes": "*u8", "out": "*fp32", "n": "i32", "split_tokens": "i32"}
ALIGNED = {(i,): [["tt.divisibility", 16]] for i in range(len(SIGNATURE))}
for name, kind, block_n, g, warps in probe.variants():
    if name not in ("l1", "smem G8 N128 w4", "smem1d G8 N64 w4", "smem64 G8 N64 w4", "smem64 G4 N32 w2"):
        continue
    constants = {"SUBS": probe.SUBS, "ROWS": probe.ROWS, "BLOCK_N": block_n, "G": g, "KIND": kind}
    signature = {**SIGNATURE, **{key: "constexpr" for key in constants}}
    constexprs = {(len(SIGNATURE) + i,): value for i, value in enumerate(constants.values())}
    compiled = compile_sm90(probe.probe_kernel, signature, constexprs, ALIGNED, {"num_warps": warps, "num_stages": 1})
    loop = main_loop(cuobjdump(compiled, "-sass"))
    registers = re.search(r"REG:(\d+)", cuobjdump(compiled, "--dump-resource-usage")).group(1)
    count = sum(loop.values())
    print(f"{name}: {registers} registers, {compiled.metadata.shared} B shared; {count} per tile and warp, "
          f"{count * warps / constants['BLOCK_N']:.1f} per position; {dict(loop.most_common(8))}", flush=True)
