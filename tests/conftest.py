"""Shared fixtures: the embedded model is loaded once per test session (converted GGUF is cached on disk).
KVTOOL_TEST_MODEL=PATH runs the suite on another local model (e.g. on the GPU machine, which has no GGUF)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.manual_seed(0)


@pytest.fixture(scope="session")
def model_path():
    return os.environ.get("KVTOOL_TEST_MODEL")  # None: the embedded model


@pytest.fixture(scope="session")
def model_and_tokenizer(model_path):
    from kvtool.models import load_model

    return load_model(model_path, device="cpu")


@pytest.fixture(scope="session")
def model(model_and_tokenizer):
    return model_and_tokenizer[0]


@pytest.fixture(scope="session")
def tokenizer(model_and_tokenizer):
    return model_and_tokenizer[1]


@pytest.fixture(scope="session")
def model_fingerprint(model):
    from kvtool.models import fingerprint

    return fingerprint(model)


@pytest.fixture()
def uncalibrated_kvquant(model_fingerprint):
    """A valid 3-bit KVQuant artifact without calibration: uniform signposts, key thresholds at +-`half_range`
    [layers, kv_heads, head_dim] (default 1), identity Q-Norm."""
    from kvtool.artifacts import Artifact

    layers, heads, dim = (model_fingerprint[k] for k in ("num_layers", "num_kv_heads", "head_dim"))

    def build(half_range: torch.Tensor | None = None) -> Artifact:
        half_range = torch.ones(layers, heads, dim) if half_range is None else half_range
        signposts = torch.linspace(-1, 1, 8).expand(layers, 8)
        return Artifact.build("kvquant", {"bits": 3}, model_fingerprint, {
            "key_signposts": signposts.clone(), "value_signposts": signposts.clone(), "key_lower": -half_range,
            "key_upper": half_range.clone(), "qnorm": torch.tensor([1.0, 0.0]).expand(layers, 2, 2).clone()})

    return build
