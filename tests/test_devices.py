"""An artifact is read wherever the model runs: each layer's codecs get the artifact's tensors on the device where
that layer's attention executes. On the CPU this is checked through accelerate's offloading (weights on the meta
device, execution on the CPU); where CUDA is present, also on the GPU against the CPU."""

from __future__ import annotations

import accelerate
import pytest
import torch

from kvtool import runtime
from kvtool.artifacts import Artifact
from kvtool.calibrate import calibrate
from kvtool.data import default_text
from kvtool.models import fingerprint, load_model
from kvtool.runtime.generate import forward
from kvtool.runtime.side_stream import SIDE_STREAMS

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
        return forward(model, ids.to(device), kv.make_cache(model)).logits.float().cpu()


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="side streams are CUDA's")
def test_million_window_encoded_on_a_side_stream_equals_the_synchronous_encode(gpu_model, tokenizer):
    """Codes and logits bit for bit over a 300-token prefill (256 tokens flushed at once) and 300 decode steps
    (flushes at positions 384 and 512). Random codebooks: the test needs neither faiss nor a calibration."""
    model_fingerprint = fingerprint(gpu_model)
    shape = (1, 1, model_fingerprint["head_dim"] // 2, 256, 2)
    books = {name: torch.randn(shape, generator=torch.Generator().manual_seed(seed)).half()
             for seed, name in enumerate(("key_codebooks", "value_codebooks"))}
    kv = runtime.load(Artifact.build("million", {"residual": 128}, model_fingerprint, books), gpu_model)
    ids = tokenizer(default_text("evaluation")[:8000], return_tensors="pt").input_ids[:, :600].cuda()

    def run(on_side_stream: bool):
        cache = kv.make_cache(gpu_model)
        for stream in cache.streams():
            stream.codec.encode_on_side_stream = on_side_stream
        with torch.no_grad():
            steps = [forward(gpu_model, ids[:, :300], cache).logits]
            steps += [forward(gpu_model, ids[:, t : t + 1], cache).logits for t in range(300, 600)]
        return torch.cat(steps, 1), cache

    (side, side_cache), (synchronous, synchronous_cache) = run(True), run(False)
    assert ids.device in SIDE_STREAMS
    for on_side, in_order in zip(side_cache.streams(), synchronous_cache.streams()):
        assert on_side.store_end == in_order.store_end == 512
        assert torch.equal(on_side.packed()["codes"], in_order.packed()["codes"])
    assert torch.equal(side, synchronous)
