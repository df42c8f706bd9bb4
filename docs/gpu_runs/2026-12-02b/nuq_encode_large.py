"""Device-only: KVQuant's encode kernel against the codecs' PyTorch path on CUDA at the sizes `kvtool bench --part
check` fills (bench's kvquant3 and kvquant2, Llama-3-8B shape, 4096-token chunks): mismatching packed elements per
tensor, and how the two encodings' reconstructions (codec.decode) differ: elements, largest difference.
  python3 docs/gpu_runs/2026-12-02b/nuq_encode_large.py"""
import torch

from kvtool import bench
from kvtool.runtime import kernels

torch.manual_seed(0)
for bits in (3, 2):
    with torch.device("cuda"):
        (group,) = bench.kvquant_groups(bits)
    x = torch.randn(2, bench.KV_HEADS, 4096, bench.HEAD_DIM, device="cuda").half()
    for kind, codec in (("keys", group.keys), ("values", group.values)):
        fused = codec.encode(x, 4096)
        with kernels.pytorch_encode():
            reference = codec.encode(x, 4096)
        differ = (codec.decode(fused, 4096) - codec.decode(reference, 4096)).abs()
        print(f"kvquant{bits} {kind}, 2 x 4096 tokens: mismatching elements",
              {name: int((fused[name] != reference[name]).sum()) for name in reference},
              f"of {x.numel()}; reconstructions differ in {int((differ > 0).sum())} elements, by at most "
              f"{differ.max().item():.4f} (|x| up to {x.abs().max().item():.2f})", flush=True)
