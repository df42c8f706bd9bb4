"""Run a model over calibration sequences and hand each method, per layer, what attention saw.

Per sequence and layer: keys after RoPE (what the cache stores), keys before RoPE (recovered by inverting the
model's own rotation, so families that normalise keys before RoPE are covered too), values, optionally queries, and
optionally the gradients of the causal-LM loss with respect to keys (pre-RoPE) and values: the Fisher information
KVQuant and CQ weight their clustering with (Fisher = gradient²).

Memory stays bounded by one sequence's activations: `capture` is a generator, and methods accumulate statistics
or token subsamples (`sample_rows`) as sequences go by. Under torchrun each rank captures its own shard of the
sequences; methods combine ranks with `kvtool.calibrate.dist`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from kvtool.calibrate import dist
from kvtool.models import Layout
from kvtool.runtime.cache import kvtool_attention
from kvtool.runtime.rope import rope_cos_sin, unapply_rope

CAPTURE_ATTENTION = "kvtool_capture"


@dataclass
class LayerKV:
    """One layer over one sequence; tensors are float32 [T, heads, head_dim] on the CPU."""

    keys: torch.Tensor  # after RoPE
    keys_pre_rope: torch.Tensor
    values: torch.Tensor
    queries: torch.Tensor | None = None  # after RoPE, [T, query heads, head_dim]
    key_grads: torch.Tensor | None = None  # d loss / d pre-RoPE key
    value_grads: torch.Tensor | None = None

    @property
    def key_fisher(self) -> torch.Tensor:
        return self.key_grads.square()

    @property
    def value_fisher(self) -> torch.Tensor:
        return self.value_grads.square()


class _Recorder:
    """The attention function used during capture: records q/k/v per layer, then runs ordinary attention."""

    def __init__(self, grads: bool) -> None:
        self.grads = grads
        self.seen: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, module, query, key, value, attention_mask, **kwargs):
        if self.grads:
            key.retain_grad()
            value.retain_grad()
        self.seen[module.layer_idx] = (query, key, value)
        return kvtool_attention(module, query, key, value, attention_mask, **kwargs)


def capture(
    model, sequences: list[torch.Tensor], grads: bool = False, queries: bool = False
) -> Iterator[tuple[int, list[LayerKV]]]:
    """Yield (sequence index, one LayerKV per model layer) for each sequence [T] of this rank's shard."""
    layout = Layout.of(model)
    device = input_device(model)
    recorder = _Recorder(grads)
    AttentionInterface.register(CAPTURE_ATTENTION, recorder)
    AttentionMaskInterface.register(CAPTURE_ATTENTION, sdpa_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(CAPTURE_ATTENTION)
    try:
        for sequence_index in dist.shard(len(sequences)):
            ids = sequences[sequence_index].to(device)[None]
            recorder.seen.clear()
            with torch.set_grad_enabled(grads):
                if grads:  # gradients must reach every layer's K and V: make the embeddings a leaf that needs them
                    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
                    out = model(inputs_embeds=embeds, labels=ids, use_cache=False)
                    out.loss.backward()
                else:
                    model(ids, use_cache=False)
            cos, sin = rope_cos_sin(model, torch.arange(ids.shape[1], device=device))
            cos, sin = cos[:, None], sin[:, None]  # [T, 1, D] against [T, heads, D]
            layers = []
            for index in range(layout.num_layers):
                query, key, value = recorder.seen[index]
                keys = key[0].detach().float().transpose(0, 1)
                cos, sin = cos.to(keys.device), sin.to(keys.device)  # a device map puts layers on several GPUs
                item = LayerKV(
                    keys=keys.cpu(),
                    keys_pre_rope=unapply_rope(keys, cos, sin).cpu(),
                    values=value[0].detach().float().transpose(0, 1).cpu(),
                    queries=query[0].detach().float().transpose(0, 1).cpu() if queries else None,
                )
                if grads:
                    # d/d pre = scale * R^T d/d post; unapply_rope gives R^T x / scale, scale² = cos² + sin²
                    key_grad = key.grad[0].float().transpose(0, 1)
                    item.key_grads = (unapply_rope(key_grad, cos, sin) * (cos * cos + sin * sin)).cpu()
                    item.value_grads = value.grad[0].float().transpose(0, 1).cpu()
                layers.append(item)
            recorder.seen.clear()
            yield sequence_index, layers
    finally:
        model.set_attn_implementation(previous)
        model.zero_grad(set_to_none=True)


def input_device(model) -> torch.device:
    """Where token ids go in: the embeddings' device, or the CPU for weights offloaded to the meta device (by a
    device map), whose accelerate hooks move inputs to where the layer runs."""
    device = model.get_input_embeddings().weight.device
    return torch.device("cpu") if device.type == "meta" else device


def sample_rows(rows: torch.Tensor, count: int, seed: int, sequence_index: int) -> torch.Tensor:
    """A random subset of `count` rows (all if fewer), drawn from (seed, sequence index) alone, so that every
    rank of a distributed calibration draws what a single process would."""
    if rows.shape[0] <= count:
        return rows
    generator = torch.Generator().manual_seed(seed * 1_000_003 + sequence_index)
    return rows[torch.randperm(rows.shape[0], generator=generator)[:count].sort().values]
