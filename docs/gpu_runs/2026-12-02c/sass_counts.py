"""SASS instructions of the decode kernel's main loop, compiled for sm_90 on a machine without a GPU
(docs/gpu_runs/sm90.py; not timed): for each split-kernel launch of one decode step of a bench format at 20,000
tokens, batch 1, the loop's instruction count per tile and warp and its most frequent opcodes. KEY VALUE: outlier
slots per token of KVQuant's keys and values instead of the format's (what docs/gpu.md's kvquant3 breakdown ran).
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python docs/gpu_runs/2026-12-02c/sass_counts.py kivi2 [KEY VALUE]"""
import sys

from sm90 import compile_sm90, cuobjdump, decode_launches, main_loop

from kvtool import bench
from kvtool.runtime.kernels import decode

fmt = sys.argv[1]
layer = bench.make_layer(fmt, "cpu")
if len(sys.argv) > 3:
    for state in layer.groups:
        state.keys.codec.slots, state.values.codec.slots = int(sys.argv[2]), int(sys.argv[3])
bench.fill_layer(layer, 1, 20000, "cpu")
for kwargs, (signature, constants, attrs, options) in decode_launches(decode, layer):
    compiled = compile_sm90(decode._decode_split_kernel, signature, constants, attrs, options)
    loop = main_loop(cuobjdump(compiled, "-sass"))
    print(f"{fmt} {' '.join(sys.argv[2:])} {'fast' if kwargs['FAST'] else 'generic'} launch, {options}: main loop "
          f"{sum(loop.values())} instructions per tile and warp; {dict(loop.most_common(12))}", flush=True)
