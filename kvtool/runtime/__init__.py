"""The runtime: load an artifact, make a compressed transformers Cache for a model, measure what it holds.

Imports only torch, transformers, safetensors and `kvtool.artifacts` (no scikit-learn, no faiss), so an inference
host installs kvtool without the `calibrate` extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import torch

from kvtool.artifacts import Artifact, load_artifact
from kvtool.errors import KvtoolError
from kvtool.models import Layout, attention_devices, fingerprint
from kvtool.runtime import cq, duo, kivi, kvquant, million, pertensor, qaq  # noqa: F401  (each method module registers its layer plan)
from kvtool.runtime.cache import CompressedCache, CompressedLayer, use_kvtool_attention
from kvtool.runtime.codec import RUNTIME_METHODS, HeadGroup
from kvtool.runtime.compose import compose_groups

__all__ = ["CompressedKV", "CompressedCache", "load", "fp16_bytes_per_token"]


@dataclass
class CompressedKV:
    """An artifact bound to the runtime: makes caches for the model it was calibrated on. `composed` artifacts are
    layered on it, head group by head group (runtime/compose.py): e.g. DuoAttention's heads with a quantizer's codecs.
    """

    artifact: Artifact
    composed: list[Artifact] = field(default_factory=list)
    _copies: dict = field(default_factory=dict, repr=False)  # (artifact index, device) -> artifact on that device

    def on_device(self, index: int, artifact: Artifact, device: torch.device) -> Artifact:
        """`artifact` with its tensors on `device`, copied once per device (not per layer or per cache)."""
        if (index, device) not in self._copies:
            self._copies[(index, device)] = artifact.to(device)
        return self._copies[(index, device)]

    @property
    def name(self) -> str:
        def one(artifact: Artifact) -> str:
            params = ",".join(f"{k}={v}" for k, v in artifact.params.items())
            return f"{artifact.method}({params})" if params else artifact.method

        return "+".join(one(a) for a in [self.artifact, *self.composed])

    def layer_groups(self, layer_idx: int, model, device: torch.device) -> list[HeadGroup]:
        """The layer's head groups; their codecs read the artifacts' tensors on `device`, where its attention runs."""
        groups = []
        for index, artifact in enumerate([self.artifact, *self.composed]):
            if artifact.method not in RUNTIME_METHODS:
                raise KvtoolError(f"this runtime has no codec for method '{artifact.method}'")
            planned = RUNTIME_METHODS[artifact.method](self.on_device(index, artifact, device), layer_idx, model)
            groups = compose_groups(groups, planned) if index else planned
        return groups

    def make_cache(self, model, check_model: bool = True) -> CompressedCache:
        """A fresh cache for one generation or evaluation pass; switches `model` to kvtool attention."""
        if check_model:
            for artifact in [self.artifact, *self.composed]:
                artifact.check_model(fingerprint(model))
        layout = Layout.of(model)
        use_kvtool_attention(model)
        layers = [
            CompressedLayer(self.layer_groups(index, model, device), layout.num_kv_heads, layout.sliding_windows[index])
            for index, device in enumerate(attention_devices(model))
        ]
        return CompressedCache(layers)


def load(artifact: str | os.PathLike | Artifact | Sequence[str | os.PathLike | Artifact], model=None) -> CompressedKV:
    """Load (and validate) an artifact, or a list of artifacts to compose; with `model`, also refuse any made for
    another model."""
    items = list(artifact) if isinstance(artifact, (list, tuple)) else [artifact]
    if not items:
        raise KvtoolError("no artifact given")
    loaded = []
    for item in items:
        if not isinstance(item, Artifact):
            item = load_artifact(item, fingerprint(model) if model is not None else None)
        elif model is not None:
            item.check_model(fingerprint(model))
        loaded.append(item)
    return CompressedKV(loaded[0], loaded[1:])


def fp16_bytes_per_token(model) -> int:
    """What an uncompressed fp16 cache holds per token: K and V, every layer, every KV head."""
    layout = Layout.of(model)
    return 2 * layout.num_layers * layout.num_kv_heads * layout.head_dim * torch.finfo(torch.float16).bits // 8
