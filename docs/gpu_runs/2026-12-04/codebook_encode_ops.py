"""Aten ops a MILLION flush dispatches to encode one layer's 128-token window, keys and values (the bench's million2
and million4: Llama-3-8B shape, 8-bit indices over 4 or 2 channels, codebooks shared by the heads): the codec's
PyTorch encode against the codebook kernel's path (kernels/quantize.py: codebook_encode and pack_bits; its launch
replaced by a no-op while counting, since Triton's interpreter dispatches aten ops of its own; on CUDA every aten op
is a host dispatch and most a launch, the kernel one launch). Counted through a TorchDispatchMode.
  TRITON_INTERPRET=1 OMP_NUM_THREADS=1 PYTHONPATH=.:docs/gpu_runs python3 \
    docs/gpu_runs/2026-12-04/codebook_encode_ops.py"""
import torch
from host_ops import CountOps, NoLaunch

from kvtool import bench
from kvtool.runtime.kernels import quantize
from kvtool.runtime.packing import pack_bits


window = torch.randn(1, bench.KV_HEADS, 128, bench.HEAD_DIM).half()
quantize._codebook_encode = NoLaunch()  # counting the host side only
for width, name in ((4, "million2"), (2, "million4")):
    (group,) = bench.million_groups(width)
    codecs = (group.keys, group.values)
    paths = {"PyTorch encode (the codec's path off CUDA)": lambda: [c.encode(window, 0) for c in codecs],
             "codebook_encode kernel path": lambda: [
                 {"codes": pack_bits(quantize.codebook_encode(window, c.codebooks, c.norms), c.low_bits)}
                 for c in codecs]}
    for path, run in paths.items():
        with CountOps() as count:
            run()
        print(f"{name}, {path}: {sum(count.ops.values())} aten ops: {dict(count.ops.most_common())}")
