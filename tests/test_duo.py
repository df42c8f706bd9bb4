"""DuoAttention: gated training attention, gate optimization, binarization, streaming heads that really drop tokens,
the artifact round trip, and composition with a quantizer."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from kvtool import runtime
from kvtool.artifacts import Artifact, load_artifact, schema_for
from kvtool.calibrate import CalibrationContext, calibrate
from kvtool.calibrate.duo import TRAINING_ATTENTION, GatedAttention, final_hidden, gate_loss, passkey_sample, run
from kvtool.data import load_text, tokenize
from kvtool.errors import KvtoolError
from kvtool.models import Layout
from kvtool.plots import format_head_map, save_head_map
from kvtool.runtime import kernels
from kvtool.runtime.compose import HeadSubset
from kvtool.runtime.duo import binarize
from kvtool.runtime.generate import forward, greedy, prefill
from kvtool.runtime.kivi import KiviKeys, KiviValues

SMALL = {"num_passkeys": 2, "passkey_words": 4, "train_sink": 8, "train_recent": 32, "min_context": 200}


def duo_artifact(fingerprint, gates: torch.Tensor, **params) -> Artifact:
    resolved = schema_for("duo").resolve_params(params)
    return Artifact.build("duo", resolved, fingerprint, {"head_map": gates, "retrieval": binarize(gates, resolved)})


@pytest.fixture(scope="module")
def gated(model):
    """The model switched to the training attention; restored afterwards."""
    gates = torch.ones(Layout.of(model).num_layers, Layout.of(model).num_kv_heads, requires_grad=True)
    attention = GatedAttention(gates, SMALL["train_sink"], SMALL["train_recent"])
    AttentionInterface.register(TRAINING_ATTENTION, attention)
    AttentionMaskInterface.register(TRAINING_ATTENTION, sdpa_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(TRAINING_ATTENTION)
    yield attention
    model.set_attn_implementation(previous)


@pytest.fixture(scope="module")
def sample(tokenizer):
    filler = tokenize(tokenizer, load_text(None, "calibration"))[:400]
    return passkey_sample(tokenizer, filler, 260, schema_for("duo").resolve_params(SMALL), random.Random(0))


def test_passkey_sample_supervises_the_question_and_answer_tail(tokenizer, sample):
    assert 250 <= len(sample.input_ids) <= 270
    tail = tokenizer.decode(sample.input_ids[sample.supervised])
    assert tail.count("passkey to the vault?") == 2 and "<book>" not in tail
    assert sample.supervised[-1] and not sample.supervised[:100].any()


def test_all_gates_one_reproduce_full_attention_exactly(model, gated, sample):
    ids = sample.input_ids[None]
    with torch.no_grad():
        gated.mixing = True
        mixed = final_hidden(model, ids)
        previous = model.config._attn_implementation
        model.set_attn_implementation("sdpa")
        reference = final_hidden(model, ids)
        model.set_attn_implementation(previous)
    assert torch.equal(mixed, reference)
    loss, distill = gate_loss(model, gated, sample, reg_weight=0.05)
    assert distill.item() == 0.0 and loss.item() == pytest.approx(0.05)


def test_lower_gates_change_the_output_and_get_gradients(model, gated, sample):
    with torch.no_grad():
        gated.gates.fill_(0.5)
    try:
        loss, distill = gate_loss(model, gated, sample, reg_weight=0.05)
        loss.backward()
        assert distill.item() > 0
        grad = gated.gates.grad
        assert grad is not None and torch.isfinite(grad).all() and (grad != grad[0, 0]).any()
    finally:
        with torch.no_grad():
            gated.gates.fill_(1.0)
        gated.gates.grad = None


def test_binarize_hits_the_fraction_and_the_threshold():
    gates = torch.rand(30, 3, generator=torch.Generator().manual_seed(1))
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        mask = binarize(gates, {"binarize": "fraction", "streaming_fraction": fraction})
        assert (~mask).sum().item() == round(fraction * 90)
        if 0 < fraction < 1:  # streaming heads are exactly the lowest gates
            assert gates[~mask].max() < gates[mask].min()
    assert torch.equal(binarize(gates, {"binarize": "threshold", "threshold": 0.3}), gates >= 0.3)


def test_calibration_moves_gates_and_baselines_rank_as_named(model, tokenizer):
    text = load_text(None, "calibration")
    learned = calibrate("duo", model, tokenizer, text, {**SMALL, "steps": 2}, samples=2, seq_len=224, progress=False)
    gates = learned.tensors["head_map"]
    assert gates.shape == (30, 3) and (gates >= 0).all() and (gates <= 1).all() and (gates < 1).all()
    assert (~learned.tensors["retrieval"]).sum().item() == 45
    context = CalibrationContext(model, [], seed=0, progress=False)
    first = run(context, schema_for("duo").resolve_params({"mask": "first-layers", "streaming_fraction": 0.5}))
    assert first["retrieval"][:15].all() and not first["retrieval"][15:].any()
    shuffled = run(context, schema_for("duo").resolve_params({"mask": "random", "streaming_fraction": 0.5}))
    assert (~shuffled["retrieval"]).sum().item() == 45 and not torch.equal(shuffled["retrieval"], first["retrieval"])


def test_artifact_round_trip_and_head_map(model_fingerprint, tmp_path):
    gates = torch.rand(30, 3, generator=torch.Generator().manual_seed(2))
    artifact = duo_artifact(model_fingerprint, gates, streaming_fraction=0.25, sink=16, recent=128)
    loaded = load_artifact(artifact.save(tmp_path / "duo.safetensors"), model_fingerprint)
    assert loaded.params == artifact.params and loaded.params["sink"] == 16 and loaded.params["recent"] == 128
    assert torch.equal(loaded.tensors["head_map"], gates)
    assert torch.equal(loaded.tensors["retrieval"], artifact.tensors["retrieval"])
    assert format_head_map(loaded).count("*") == 68 + 1  # 68 retrieval heads, plus the legend's star
    assert save_head_map(loaded, tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KvtoolError):
        Artifact.build("duo", {}, model_fingerprint, {"head_map": gates, "retrieval": gates > 2, "extra": gates})


def test_no_streaming_heads_equal_fp16(model, tokenizer, model_fingerprint):
    ids = tokenizer("Streaming heads keep sinks and a recent window. " * 12, return_tensors="pt").input_ids
    duo = runtime.load(duo_artifact(model_fingerprint, torch.ones(30, 3), streaming_fraction=0.0), model)
    fp16 = runtime.load(Artifact.build("fp16", {}, model_fingerprint), model)
    with torch.no_grad():
        assert torch.equal(forward(model, ids, duo.make_cache(model)).logits, forward(model, ids, fp16.make_cache(model)).logits)


def test_streaming_heads_stop_growing_while_generating(model, tokenizer, model_fingerprint):
    gates = torch.rand(30, 3, generator=torch.Generator().manual_seed(3))
    kv = runtime.load(duo_artifact(model_fingerprint, gates, streaming_fraction=0.5, sink=2, recent=8), model)
    cache = kv.make_cache(model)
    ids = tokenizer("Count on: one two three four five six seven eight nine ten", return_tensors="pt").input_ids
    held = {"streaming": [], "retrieval": []}
    for _ in greedy(model, ids, cache, max_new_tokens=16):
        groups = [g for layer in cache.layers for g in layer.groups]
        held["streaming"].append(sum(g.nbytes() for g in groups if g.recent is not None))
        held["retrieval"].append(sum(g.nbytes() for g in groups if g.recent is None))
    assert cache.get_seq_length() > 2 + 8 + 10
    heads, per_token = 45, 2 * 64 * 2  # streaming KV heads; K and V fp16 bytes per head and token
    assert held["streaming"][-1] == held["streaming"][-8] <= heads * per_token * (2 + 8)
    assert held["retrieval"][-1] > held["retrieval"][-8]  # retrieval heads keep every token
    for layer in cache.layers:
        for group in layer.groups:
            if group.recent is not None:
                assert group.keys.sink_len + group.keys.tail.shape[2] <= 2 + 8


def test_streaming_runtime_equals_dense_masked_attention(model, tokenizer, model_fingerprint):
    """The cache (chunked prefill, old tokens of streaming heads dropped) computes what dense attention with each
    streaming head's sink + recent mask computes: closer than the same mask one token wider by a wide margin."""
    gates = torch.rand(30, 3, generator=torch.Generator().manual_seed(5))
    duo = duo_artifact(model_fingerprint, gates, streaming_fraction=0.5, sink=4, recent=32)
    ids = tokenizer("Every streaming head keeps sinks and a window. " * 30, return_tensors="pt").input_ids
    with torch.no_grad():
        cached = prefill(model, ids, runtime.load(duo, model).make_cache(model), chunk=100)
    dense_name = "kvtool_test_duo_dense"
    AttentionMaskInterface.register(dense_name, sdpa_mask)
    previous = model.config._attn_implementation
    differences = []
    try:
        for recent in (32, 33):
            AttentionInterface.register(dense_name, GatedAttention(duo.tensors["retrieval"].float(), 4, recent))
            model.set_attn_implementation(dense_name)
            with torch.no_grad():
                dense = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1]
            differences.append((cached - dense).abs().max().item())
    finally:
        model.set_attn_implementation(previous)
    assert ids.shape[1] > 250 and differences[0] < 0.05 and differences[0] * 4 < differences[1]


def test_duo_composes_with_kvquant_whose_outliers_span_the_group(model, tokenizer, model_fingerprint,
                                                                 uncalibrated_kvquant):
    """KVQuant keeps outlier slots and value ranges per token over all heads of its group, so a Duo split gives each
    part its own restricted codec (thresholds of its heads), not a zero-filled HeadSubset."""
    layers, heads, dim = (model_fingerprint[k] for k in ("num_layers", "num_kv_heads", "head_dim"))
    half_range = 1 + torch.rand(layers, heads, dim, generator=torch.Generator().manual_seed(7))
    kvquant = uncalibrated_kvquant(half_range)
    duo = duo_artifact(model_fingerprint, torch.rand(30, 3, generator=torch.Generator().manual_seed(8)),
                       streaming_fraction=0.5, sink=4, recent=64)
    ids = tokenizer("Outliers of a token span every head. " * 30, return_tensors="pt").input_ids
    logits = []
    for order in ([duo, kvquant], [kvquant, duo]):
        kv = runtime.load(order, model)
        with torch.no_grad():
            logits.append(forward(model, ids, kv.make_cache(model)).logits)
        for index in range(layers):
            for group in kv.layer_groups(index, model, torch.device("cpu")):
                expected = half_range[index, group.heads][:, None]  # the half range of exactly these heads
                assert torch.equal(group.keys.half_range, expected)
    assert torch.isfinite(logits[0]).all() and torch.equal(logits[0], logits[1])


def test_attention_driven_codecs_refuse_to_be_split_by_duo_heads(model, model_fingerprint):
    """QAQ's value widths follow the attention of its whole group: level=layer groups (all KV heads) cannot be split
    into retrieval and streaming parts; level=head groups compose."""
    layers, heads = model_fingerprint["num_layers"], model_fingerprint["num_kv_heads"]
    duo = duo_artifact(model_fingerprint, torch.rand(30, 3, generator=torch.Generator().manual_seed(6)),
                       streaming_fraction=0.5)
    tolerance = torch.tensor([0.05, 0.5])
    per_layer = Artifact.build("qaq", {"level": "layer"}, model_fingerprint,
                               {"tolerance": tolerance, "query_norm": torch.ones(layers, 1)})
    per_head = Artifact.build("qaq", {"level": "head"}, model_fingerprint,
                              {"tolerance": tolerance, "query_norm": torch.ones(layers, heads)})
    split = [index for index in range(30) if 0 < duo.tensors["retrieval"][index].sum() < heads][0]
    with pytest.raises(KvtoolError, match="level=head"):
        runtime.load([duo, per_layer], model).layer_groups(split, model, torch.device("cpu"))
    groups = runtime.load([duo, per_head], model).layer_groups(split, model, torch.device("cpu"))
    assert sorted(h for g in groups for h in g.heads) == list(range(heads))


def test_head_subset_codec_equals_the_codec_on_those_heads():
    x = torch.randn(1, 3, 128, 64)
    for codec in (KiviKeys(2, 32, 128), KiviValues(2, 32, 128)):
        subset = HeadSubset(codec, [2, 0], 3)
        packed = subset.encode(x[:, [2, 0]], 0)
        assert torch.equal(subset.decode(packed, 0), codec.decode(codec.encode(x[:, [2, 0]], 0), 0))
        assert all(t.shape[1] == 2 for t in packed.values())


def test_duo_composes_with_a_quantizer_in_either_order(model, tokenizer, model_fingerprint):
    gates = torch.rand(30, 3, generator=torch.Generator().manual_seed(4))
    duo = duo_artifact(model_fingerprint, gates, streaming_fraction=0.5, sink=4, recent=64)
    kivi = Artifact.build("kivi", {"bits": 2}, model_fingerprint)
    ids = tokenizer("A quantized cache of retrieval heads. " * 30, return_tensors="pt").input_ids
    results = []
    for order in ([duo, kivi], [kivi, duo]):
        kv = runtime.load(order, model)
        cache = kv.make_cache(model)
        with torch.no_grad():
            results.append(forward(model, ids, cache).logits)
        groups = [g for index in range(30) for g in kv.layer_groups(index, model, torch.device("cpu"))]
        assert all(isinstance(g.keys, KiviKeys) and isinstance(g.values, KiviValues) for g in groups)
        # KIVI splits as itself: the fused kernel reads every group on CUDA
        assert all(kernels.layout_supported(c.layout, 64) for g in groups for c in (g.keys, g.values))
        assert sum(len(g.heads) for g in groups if g.recent == 64 and g.sink == 4) == 45
        assert cache.compressed_bits_per_element() < 4
    assert torch.equal(results[0], results[1])
    assert "duo(" in runtime.load([duo, kivi]).name and "+kivi(" in runtime.load([duo, kivi]).name
