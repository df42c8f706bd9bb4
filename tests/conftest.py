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
