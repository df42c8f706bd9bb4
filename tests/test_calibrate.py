"""KV capture against the model's own projections, deterministic sampling, and a calibration end to end."""

from __future__ import annotations

import torch

from kvtool.artifacts import load_artifact
from kvtool.calibrate import calibrate
from kvtool.calibrate.capture import capture, sample_rows
from kvtool.data import calibration_sequences, default_text, default_topics, evaluation_sequences, load_text
from kvtool.eval import fp16_baseline, perplexity
from kvtool import runtime


def test_capture_matches_projections_and_their_gradients(model, tokenizer):
    ids = tokenizer(default_text("calibration")[:3000], return_tensors="pt").input_ids[0, :200]
    seen = {}

    def keep(module, inputs, output):
        output.retain_grad()
        seen["k"] = output

    hook = model.model.layers[5].self_attn.k_proj.register_forward_hook(keep)
    try:
        embeds = model.get_input_embeddings()(ids[None]).detach().requires_grad_(True)
        model(inputs_embeds=embeds, labels=ids[None]).loss.backward()
    finally:
        hook.remove()
    reference_keys = seen["k"][0].detach().view(200, 3, 64)
    reference_grads = seen["k"].grad[0].view(200, 3, 64)
    (index, layers), = list(capture(model, [ids], grads=True, queries=True))
    layer = layers[5]
    assert index == 0 and layer.queries.shape == (200, 9, 64)
    assert torch.allclose(layer.keys_pre_rope, reference_keys, atol=1e-4)
    assert torch.allclose(layer.key_grads, reference_grads, atol=1e-7, rtol=1e-3)
    assert (layer.key_fisher >= 0).all() and layer.value_grads.abs().sum() > 0


def test_sample_rows_depends_only_on_seed_and_sequence():
    rows = torch.arange(1000.0)[:, None]
    first, again = sample_rows(rows, 50, 3, 7), sample_rows(rows.clone(), 50, 3, 7)
    assert torch.equal(first, again) and first.shape == (50, 1)
    assert not torch.equal(first, sample_rows(rows, 50, 3, 8))
    assert torch.equal(sample_rows(rows[:10], 50, 3, 7), rows[:10])


def test_default_text_splits_are_disjoint_and_deterministic(tokenizer):
    calibration, evaluation = default_text("calibration"), default_text("evaluation")
    assert len(calibration) > 3 * len(evaluation) > 0
    assert not set(default_topics("calibration")) & set(default_topics("evaluation"))
    assert calibration_sequences(tokenizer, calibration, 4, 128, 1)[2].equal(
        calibration_sequences(tokenizer, calibration, 4, 128, 1)[2])


def test_jsonl_data(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "alpha"}\n\n{"text": "beta"}\n')
    assert load_text(path, "calibration") == "alpha\n\nbeta"


def test_naive_per_tensor_calibration_end_to_end(model, tokenizer, model_fingerprint, tmp_path):
    artifact = calibrate("pertensor", model, tokenizer, default_text("calibration"), {"bits": 4},
                         samples=2, seq_len=256, seed=0, progress=False)
    ranges = artifact.tensors["key_range"]
    assert (ranges[:, 0] < ranges[:, 1]).all() and artifact.calibration["samples"] == 2
    path = artifact.save(tmp_path / "naive.safetensors")
    loaded = load_artifact(path, model_fingerprint)
    sequences = evaluation_sequences(tokenizer, default_text("evaluation"), 256, 1)
    fp16 = perplexity(model, sequences, fp16_baseline(model), progress=False)
    naive = perplexity(model, sequences, runtime.load(loaded), progress=False)
    assert naive.perplexity > fp16.perplexity and abs(naive.bits_per_element - 4) < 1e-6
