"""Device-only: the codebook codecs' encode (MILLION's and CQ's) on CUDA, the encode kernel's path (codebook_encode
and pack_bits) against the codec's PyTorch path, at the bench's shapes (Llama-3-8B: 8 KV heads, head_dim 128, 8-bit
indices over 2 or 4 channels): median of CUDA-event times over 100 calls, and the share of sub-vectors where the two
pick different centroids (with the kernel's farther away, float64 distances). Optionally for several tokens per
program (quantize.CODEBOOK_TOKENS), comma-separated.
  PYTHONPATH=.:docs/gpu_runs python3 docs/gpu_runs/2026-12-04b/codebook_encode_times.py [TOKENS_PER_PROGRAM]"""
import sys

import torch
from event_times import median_us

from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.kernels import quantize

torch.set_default_device("cuda")


for width, name in ((4, "million2"), (2, "million4")):
    (group,) = bench.million_groups(width)
    codec = group.keys
    for batch, tokens in ((1, 128), (16, 128), (1, 4096), (16, 4096)):
        x = torch.randn(batch, bench.KV_HEADS, tokens, bench.HEAD_DIM).half()
        with kernels.pytorch_encode():
            torch_us = median_us(lambda: codec.encode(x, 0))
            want = codec.indices(codec.encode(x, 0))
        sub = x.double().unflatten(-1, (codec.subspaces, width))  # [B, H, n, S, c]
        centroid = lambda index: codec.codebooks[0][torch.arange(codec.subspaces), index]  # noqa: E731
        picked = lambda index: (sub - centroid(index)).square().sum(-1)  # noqa: E731
        print(f"{name} encode {batch}x{tokens}: PyTorch {torch_us:.1f} us", flush=True)
        for block in sys.argv[1].split(",") if len(sys.argv) > 1 else [quantize.CODEBOOK_TOKENS]:
            quantize.CODEBOOK_TOKENS = int(block)
            kernel_us = median_us(lambda: codec.encode(x, 0))
            got = codec.indices(codec.encode(x, 0))
            differ = (got != want).double().mean().item()
            farther = (picked(got) > picked(want) * (1 + 1e-5) + 1e-9).double().mean().item()
            print(f"  kernel, {block} tokens per program: {kernel_us:.1f} us ({torch_us / kernel_us:.1f}x); indices "
                  f"differ {differ:.2e}, kernel's farther {farther:.2e}", flush=True)
