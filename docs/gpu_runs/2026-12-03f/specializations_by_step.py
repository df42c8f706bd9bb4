"""CPU only (no GPU, nothing compiled): the decode step's Triton specializations, by the step each first appears at.
A bench format's layer is filled to CONTEXT random tokens on the CPU; then, one token appended per step, every split
and merge launch of a decode step, and every launch compiled ahead (`decode._compile_ahead`), is recorded instead of
run, and keyed as Triton keys its compiles (docs/gpu_runs/sm90.py's launch_signature: pointer alignment, integers
divisible by 16 or equal to 1, constexprs, options). A variant first seen after the first steps is a JIT compile
(a second or more on a GPU) midway through a generation. On a GPU of 132 multiprocessors (an H100 or H200).
B (default 1): sequences per step.
  PYTHONPATH=.:docs/gpu_runs python3 docs/gpu_runs/2026-12-03f/specializations_by_step.py duo50+kivi2 8192 512 [B]"""
import sys

import torch
from sm90 import launch_signature

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import decode

fmt, context, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
events = []


class Recorded:
    """Stands in for a Triton kernel: its launches and compiles ahead recorded as (kernel, kind, args, kwargs)."""

    def __init__(self, kernel, per_step: list[str]) -> None:
        self.kernel, self.per_step = kernel, per_step

    def __getitem__(self, grid):
        return lambda *args, **kwargs: events.append((self, "launch", args, kwargs))

    def warmup(self, *args, grid, **kwargs):
        events.append((self, "compiled ahead", args, kwargs))


decode._target_programs = lambda device, launch: launch.programs_per_sm * 132
decode._decode_split_kernel = Recorded(decode._decode_split_kernel, decode._PER_STEP)
decode._merge_partials_kernel = Recorded(decode._merge_partials_kernel, ["num_parts"])
layer = bench.make_layer(fmt, "cpu")
bench.fill_layer(layer, batch, context, "cpu")
first_seen = {}
for step in range(steps):
    keys = torch.randn(batch, bench.KV_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16)
    bench.append_without_attention(layer, keys, torch.randn_like(keys))
    events.clear()
    query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16)
    kernels.attend_decode(layer, query, None, bench.HEAD_DIM ** -0.5, None)
    for recorded, kind, args, kwargs in events:
        signature, constants, attrs, options = launch_signature(recorded.kernel, args, {"num_stages": 1, **kwargs},
                                                                recorded.per_step)
        key = (recorded.kernel.fn.__name__, *(tuple(sorted(map(str, d.items()))) for d in (
            signature, constants, attrs, options)))
        if key not in first_seen:
            first_seen[key] = step
            if step > 1:
                print(f"step {step} ({context + step} tokens): a new {key[0]} variant, {kind}", flush=True)
print(f"{fmt} at batch {batch} from {context} tokens, {steps} steps: variants first seen at steps "
      f"{sorted(first_seen.values())}")
