"""Coupled Quantization's calibration (arXiv 2405.03917, Sec. 3): per layer and per group of c contiguous channels
of the keys (and of the values), 2**b centroids by k-means with k-means++ seeding, Fisher-guided: each sub-vector
weighs in with gᵀg, the squared gradient of the language-model loss with respect to it.

Keys are coded before RoPE (docs/methods/cq.md gives the measurement), weighted by the gradients with respect to
the pre-RoPE key. k-means++ is the original one (one candidate per new centroid, Arthur & Vassilvitskii 2007).
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import capture
from kvtool.calibrate.codebook import SampleBank, learn_product_codebooks
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
    subspaces = layout.head_dim // width
    tensors = {}
    for kind in ("key", "value"):
        per_layer = []
        for index in tqdm(range(layout.num_layers), desc=f"CQ {kind} centroids", disable=not context.progress):
            vectors = bank.gathered(f"{kind}{index}")
            weights = bank.gathered(f"{kind}{index}.fisher") if fisher else None
            per_layer.append(torch.stack([
                learn_product_codebooks(
                    vectors[:, head * layout.head_dim : (head + 1) * layout.head_dim], width, params["bits"],
                    params["iterations"], context.seed + 1009 * index,
                    None if weights is None else weights[:, head * subspaces : (head + 1) * subspaces],
                    plus_plus=True,
                )
                for head in range(layout.num_kv_heads)
            ]))
        tensors[f"{kind}_codebooks"] = torch.stack(per_layer).half()
    return tensors


# published: 16 x 2048 tokens; scaled to fit the 2-minute goal on a 2-core CPU (docs/methods/cq.md)
register_calibrator(Calibrator("cq", run=calibrate_cq, samples=8, seq_len=512))
