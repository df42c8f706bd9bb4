"""DuoAttention (arXiv 2410.10819) at inference: retrieval heads keep the whole cache; streaming heads keep only
their first `sink` tokens and the last `recent` ones, so their cache stops growing. Older tokens of a streaming head
are dropped from memory (a HeadGroup with sink/recent), not masked.
"""

from __future__ import annotations

import torch

from kvtool.artifacts import Artifact
from kvtool.runtime.codec import Fp16Codec, HeadGroup, register_method


def binarize(gates: torch.Tensor, params: dict) -> torch.Tensor:
    """Retrieval mask [layers, kv_heads] (True = full attention) from gates.

    "fraction": the round(streaming_fraction · heads) lowest gates become streaming heads (the reference's quantile
    rule; ties go to the lower index). "threshold": heads whose gate is at least `threshold` stay retrieval heads.
    """
    if params["binarize"] == "threshold":
        return gates >= params["threshold"]
    streaming = round(params["streaming_fraction"] * gates.numel())
    order = torch.argsort(gates.flatten(), stable=True)
    retrieval = torch.ones(gates.numel(), dtype=torch.bool)
    retrieval[order[:streaming]] = False
    return retrieval.reshape(gates.shape)


@register_method("duo")
def duo_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    retrieval = artifact.tensors["retrieval"][layer_idx].tolist()
    full = [h for h, keep in enumerate(retrieval) if keep]
    streaming = [h for h, keep in enumerate(retrieval) if not keep]
    groups = [HeadGroup(full, Fp16Codec(), Fp16Codec())] if full else []
    if streaming:
        sink, recent = artifact.params["sink"], artifact.params["recent"]
        groups.append(HeadGroup(streaming, Fp16Codec(), Fp16Codec(), sink=sink, recent=recent))
    return groups
