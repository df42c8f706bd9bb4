"""An artifact is read wherever the model runs: each layer's codecs get the artifact's tensors on the device where
that layer's attention executes. On the CPU this is checked through accelerate's offloading (weights on the meta
device, execution on the CPU); where CUDA is present, also on the GPU against the CPU."""

from __future__ import annotations

import accelerate
import pytest
import torch

from kvtool import runtime
from kvtool.calibrate import calibrate
from kvtool.data import default_text
from kvtool.models import load_model

# Every method with calibrated tensors, at settings small enough for the CPU.
SETTINGS = {
    "kvquant": {"bits": 3},
    "qaq": {},
    "cq": {"bits": 8, "channels_per_group": 4},
    "million": {"bits": 4},
    "kivi": {"bits": 2, "residual": 32},
    "duo": {"mask": "random"},
}


@pytest.fixture(scope="module")
def prompt(tokenizer):
    return tokenizer(default_text("evaluation")[:4000], return_tensors="pt").input_ids[:, :192]


@pytest.fixture(scope="module")
def offloaded_model(model_path):
    model, _ = load_model(model_path, device="cpu")
    accelerate.cpu_offload(model, execution_device=torch.device("cpu"))
    return model


@pytest.fixture(scope="module")
def gpu_model(model_path):
    if not torch.cuda.is_available():
        return None
    return load_model(model_path, device="cuda", dtype=torch.float32)[0]


def logits(model, kv, ids: torch.Tensor, device: str = "cpu") -> torch.Tensor:
    with torch.no_grad():
        return model(ids.to(device), past_key_values=kv.make_cache(model)).logits.float().cpu()


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_an_artifact_runs_where_the_model_runs(method, model, tokenizer, prompt, offloaded_model, gpu_model):
    artifact = calibrate(method, model, tokenizer, default_text("calibration"), SETTINGS[method], 2, 128, seed=1,
                         progress=False)
    kv = runtime.load(artifact, model)
    reference = logits(model, kv, prompt)
    assert torch.allclose(logits(offloaded_model, kv, prompt), reference, rtol=1e-4, atol=1e-4)
    if gpu_model is not None:
        on_gpu = logits(gpu_model, kv, prompt, "cuda")
        agree = (on_gpu.argmax(-1) == reference.argmax(-1)).float().mean().item()
        assert agree > 0.9, agree  # float32 on both; a code near a rounding boundary may flip a near-tied token
        assert (on_gpu - reference).abs().mean() < 0.02
