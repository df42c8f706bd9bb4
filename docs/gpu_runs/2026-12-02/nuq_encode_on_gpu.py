"""Device-only: KVQuant's encode kernel against the codecs' PyTorch path on CUDA (bench's kvquant3, Llama-3-8B
shape): one decode token and a 300-token chunk, keys and values; prints mismatching elements per tensor.
  python3 docs/gpu_runs/2026-12-02/nuq_encode_on_gpu.py"""
import torch

from kvtool import bench
from kvtool.runtime import kernels

with torch.device("cuda"):
    (group,) = bench.kvquant_groups(3)
for tokens in (1, 300):
    x = torch.randn(2, bench.KV_HEADS, tokens, bench.HEAD_DIM, device="cuda").half()
    fused = [codec.encode(x, 4096) for codec in (group.keys, group.values)]
    with kernels.pytorch_encode():
        reference = [codec.encode(x, 4096) for codec in (group.keys, group.values)]
    for kind, got, want in zip(("keys", "values"), fused, reference):
        print(f"{kind}, {tokens} tokens: mismatching elements",
              {name: int((got[name] != want[name]).sum()) for name in want}, flush=True)
