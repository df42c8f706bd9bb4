"""bench's check of QAQ at head_dim 64 (the SmolLM2 shape's) besides 128: fused vs reference path."""
import torch

from kvtool import bench

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
for dim in (128, 64):
    bench.HEAD_DIM = dim
    print("head_dim", dim, bench.check_against_reference(["qaq4"], device=DEVICE, shapes=((2, 5000), (1, 3000)),
                                                         launches=("auto", "bitplanes:32/2/1")), flush=True)
