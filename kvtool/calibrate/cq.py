"""Coupled Quantization's calibration (arXiv 2405.03917, Sec. 3): per layer and per group of c contiguous channels
of the keys (and of the values), 2**b centroids by k-means with k-means++ seeding, Fisher-guided: each sub-vector
weighs in with gᵀg, the squared gradient of the language-model loss with respect to it.

Keys are coded before RoPE (docs/methods/cq.md gives the measurement), weighted by the gradients with respect to
the pre-RoPE key. k-means++ is the original one (one candidate per new centroid, Arthur & Vassilvitskii 2007), weighted
like the Lloyd steps; all channel groups of a layer are clustered in one batch (`batched_kmeans`).
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import capture, input_device
from kvtool.calibrate.codebook import SampleBank, batched_kmeans
from kvtool.models import Layout


def group_fisher(grads: torch.Tensor, width: int) -> torch.Tensor:
    """gᵀg per channel group: grads [T, H, D] -> [T, H * D / width]."""
    return grads.square().unflatten(-1, (-1, width)).sum(-1).flatten(1)


def calibrate_cq(context: CalibrationContext, params: dict) -> dict[str, torch.Tensor]:
    layout = Layout.of(context.model)
    width, fisher = params["channels_per_group"], params["fisher"]
    bank = SampleBank()
    captured = capture(context.model, context.sequences, grads=fisher)
    for sequence_index, layers in tqdm(captured, total=len(dist.shard(len(context.sequences))),
                                       desc="CQ capture", disable=not context.progress):
        for index, layer in enumerate(layers):
            bank.add(f"key{index}", sequence_index, layer.keys_pre_rope.flatten(1))
            bank.add(f"value{index}", sequence_index, layer.values.flatten(1))
            if fisher:
                bank.add(f"key{index}.fisher", sequence_index, group_fisher(layer.key_grads, width))
                bank.add(f"value{index}.fisher", sequence_index, group_fisher(layer.value_grads, width))
    device = input_device(context.model)  # k-means where the model runs: CUDA on the GPU path
    tensors = {}
    for kind in ("key", "value"):
        per_layer = []
        for index in tqdm(range(layout.num_layers), desc=f"CQ {kind} centroids", disable=not context.progress):
            # every head's channel groups of the layer as one batch: [n, H * D] -> [H * D / width, n, width]
            points = bank.gathered(f"{kind}{index}").unflatten(1, (-1, width)).transpose(0, 1).contiguous().to(device)
            weights = bank.gathered(f"{kind}{index}.fisher").T.to(device) if fisher else None
            books = batched_kmeans(points, 1 << params["bits"], params["iterations"], context.seed + 1009 * index,
                                   weights)
            per_layer.append(books.unflatten(0, (layout.num_kv_heads, -1)).cpu())
        tensors[f"{kind}_codebooks"] = torch.stack(per_layer).half()
    return tensors


# published: 16 x 2048 tokens; scaled to fit the 2-minute goal on a 2-core CPU (docs/methods/cq.md)
register_calibrator(Calibrator("cq", run=calibrate_cq, samples=8, seq_len=512))
