"""The runtime: load an artifact, make a compressed transformers Cache for a model, measure what it holds.

Imports only torch, transformers, safetensors and `kvtool.artifacts` (no scikit-learn, no faiss), so an inference
host installs kvtool without the `calibrate` extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from kvtool.artifacts import Artifact, load_artifact
from kvtool.errors import KvtoolError
from kvtool.models import Layout, fingerprint
from kvtool.runtime import kivi, kvquant, pertensor  # noqa: F401  (each method module registers its layer plan)
from kvtool.runtime.cache import CompressedCache, CompressedLayer, use_kvtool_attention
from kvtool.runtime.codec import RUNTIME_METHODS

__all__ = ["CompressedKV", "CompressedCache", "load", "fp16_bytes_per_token"]


@dataclass
class CompressedKV:
    """An artifact bound to the runtime: makes caches for the model it was calibrated on."""

    artifact: Artifact

    @property
    def name(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.artifact.params.items())
        return f"{self.artifact.method}({params})" if params else self.artifact.method

    def make_cache(self, model, check_model: bool = True) -> CompressedCache:
        """A fresh cache for one generation or evaluation pass; switches `model` to kvtool attention."""
        if check_model:
            self.artifact.check_model(fingerprint(model))
        if self.artifact.method not in RUNTIME_METHODS:
            raise KvtoolError(f"this runtime has no codec for method '{self.artifact.method}'")
        plan = RUNTIME_METHODS[self.artifact.method]
        layout = Layout.of(model)
        use_kvtool_attention(model)
        layers = [
            CompressedLayer(plan(self.artifact, index, model), layout.num_kv_heads, layout.sliding_windows[index])
            for index in range(layout.num_layers)
        ]
        return CompressedCache(layers)


def load(artifact: str | os.PathLike | Artifact, model=None) -> CompressedKV:
    """Load (and validate) an artifact; with `model`, also refuse one made for another model."""
    if not isinstance(artifact, Artifact):
        artifact = load_artifact(artifact, fingerprint(model) if model is not None else None)
    elif model is not None:
        artifact.check_model(fingerprint(model))
    return CompressedKV(artifact)


def fp16_bytes_per_token(model) -> int:
    """What an uncompressed fp16 cache holds per token: K and V, every layer, every KV head."""
    layout = Layout.of(model)
    return 2 * layout.num_layers * layout.num_kv_heads * layout.head_dim * torch.finfo(torch.float16).bits // 8
