"""KVQuant: codebook fitting, pre-RoPE key round trip, exact sparse outliers, artifact checks, and the real model."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from kvtool.artifacts import Artifact
from kvtool.calibrate import calibrate
from kvtool.calibrate.kvquant import fit_signposts, qnorm_terms
from kvtool.data import load_text
from kvtool.errors import KvtoolError
from kvtool.eval import fp16_baseline
from kvtool.runtime import kernels, load
from kvtool.runtime.cache import CompressedLayer
from kvtool.runtime.codec import HeadGroup
from kvtool.runtime.generate import greedy
from kvtool.runtime.kvquant import Codebook, NuqKeys, NuqValues, per_token
from kvtool.runtime.rope import apply_rope, rope_cos_sin

HEADS, DIM = 3, 64


@pytest.fixture(scope="module")
def nuq4(model, tokenizer):
    """A real (small) calibration: 2 x 96 tokens with gradients, nuq4-1%."""
    text = load_text(None, "calibration")
    return calibrate("kvquant", model, tokenizer, text, {"bits": 4}, samples=2, seq_len=96, progress=False)


def uniform_codebook(bits: int) -> Codebook:
    return Codebook(torch.linspace(-1, 1, 1 << bits))


def test_calibrated_signposts_are_sorted_finite_and_normalized(nuq4, model_fingerprint):
    for kind in ("key_signposts", "value_signposts"):
        signposts = nuq4.tensors[kind]
        assert signposts.shape == (model_fingerprint["num_layers"], 16)
        assert torch.isfinite(signposts).all() and (signposts.diff(dim=1) > 0).all()
        assert signposts.abs().max() <= 1.0 + 1e-5  # k-means centres of elements normalized into [-1, 1]
    assert (nuq4.tensors["key_upper"] > nuq4.tensors["key_lower"]).all()
    assert torch.equal(nuq4.tensors["qnorm"], torch.tensor([[1.0, 0.0]] * 2).expand(30, 2, 2))  # Q-Norm: 2 bits only


def test_fisher_weights_pull_signposts_towards_heavy_elements():
    x = torch.linspace(-1, 1, 4001)
    heavy = torch.where(x > 0.5, 1000.0, 1.0)
    plain, weighted = fit_signposts(x, None, 2, seed=0), fit_signposts(x, heavy, 2, seed=0)
    assert (plain > 0.5).sum() <= 1 and (weighted > 0.5).sum() >= 2


def test_qnorm_matches_mean_and_std_of_the_originals():
    x = torch.randn(20000).clamp(-3, 3) / 3
    signposts = fit_signposts(x, None, 2, seed=0)
    scale, offset = qnorm_terms(x, signposts)
    codebook = Codebook(signposts, scale, offset)
    y = codebook.decode(codebook.encode(x))
    assert abs(y.mean() - x.mean()) < 1e-4 and abs(y.std(correction=0) - x.std(correction=0)) < 1e-4
    assert scale != 1.0


def test_keys_are_quantized_before_rope_and_rope_applied_after(model):
    lower, upper = -torch.rand(HEADS, DIM) - 0.5, torch.rand(HEADS, DIM) + 0.5
    keys = NuqKeys(3, uniform_codebook(3), lower, upper, slots=4, model=model)
    pre = torch.rand(1, HEADS, 20, DIM) * (upper - lower)[:, None] + lower[:, None]
    codes = None
    for start in (0, 37, 1000):  # the same pre-RoPE keys give the same codes wherever they sit
        cos, sin = rope_cos_sin(model, torch.arange(start, start + 20))
        packed = keys.encode(apply_rope(pre, cos, sin), start)
        if codes is not None:
            assert torch.equal(packed["codes"], codes)
        codes = packed["codes"]
        decoded = keys.decode(packed, start)
        assert torch.allclose(decoded, apply_rope(keys.dequantize(packed), cos, sin), atol=1e-6)
        # uniform 3-bit signposts 2/7 apart: every element within a half step of its channel range (+ fp16 slack)
        step = (upper - lower)[:, None] / 7
        assert ((keys.dequantize(packed) - pre).abs() <= step / 2 + 2e-3).all()


def test_kvquant_layers_take_the_fused_kernel_unless_rope_changes_with_length(model, monkeypatch):
    """The decode kernel rotates keys with the rotary embedding's fixed inv_freq: "dynamic" RoPE takes the reference
    path (tests/kernel_checks.py checks the kernel against it)."""
    lower, upper = -torch.ones(HEADS, DIM), torch.ones(HEADS, DIM)
    keys = NuqKeys(3, uniform_codebook(3), lower, upper, slots=4, model=model)
    layer = CompressedLayer([HeadGroup(list(range(HEADS)), keys, NuqValues(3, uniform_codebook(3), 2))], HEADS)
    assert kernels.can_fuse(layer.groups, DIM) == (importlib.util.find_spec("triton") is not None)
    monkeypatch.setattr(model.model.rotary_emb, "rope_type", "dynamic")
    assert NuqKeys(3, uniform_codebook(3), lower, upper, slots=4, model=model).layout is None


def test_key_outliers_are_the_largest_normalized_elements_and_exact(model):
    lower, upper = -torch.ones(HEADS, DIM), torch.ones(HEADS, DIM)
    keys = NuqKeys(2, uniform_codebook(2), lower, upper, slots=4, model=model)
    pre = torch.rand(2, HEADS, 9, DIM) * 2 - 1
    pre[0, 1, 3, 5], pre[1, 2, 8, 60], pre[1, 0, 8, 0] = 40.0, -7.5, 3.3  # far outside the channel ranges
    packed = keys.quantize(pre)
    assert packed["outlier_index"].shape == (2, 1, 9, 4) and packed["outlier_index"].dtype == torch.uint8
    out = keys.dequantize(packed)
    assert out[0, 1, 3, 5] == 40.0 and out[1, 2, 8, 60] == -7.5 and out[1, 0, 8, 0] == pre[1, 0, 8, 0].half()
    kept = per_token(out).gather(-1, packed["outlier_index"][:, 0].long())
    assert torch.equal(kept, per_token(pre).gather(-1, packed["outlier_index"][:, 0].long()).half().float())


def test_per_head_key_outliers_are_each_heads_largest(model):
    """key_vector=head: every (token, head) keeps its own `slots` largest normalized elements, held in slots
    head * slots onwards, so one head's outliers cannot take another's."""
    lower, upper = -torch.ones(HEADS, DIM), torch.ones(HEADS, DIM)
    keys = NuqKeys(2, uniform_codebook(2), lower, upper, slots=2, model=model, per_head_vectors=True)
    pre = torch.rand(1, HEADS, 5, DIM) * 2 - 1
    pre[0, 0, :, :3] = torch.tensor([40.0, -30.0, 20.0])  # head 0 has three outliers per token: two fit
    packed = keys.quantize(pre)
    assert packed["outlier_index"].shape == (1, 1, 5, 2 * HEADS)
    slots = packed["outlier_index"][0, 0].long().reshape(5, HEADS, 2)
    for head in range(HEADS):
        largest = pre[0, head].abs().topk(2, dim=-1).indices.sort(-1).values + head * DIM
        assert torch.equal(slots[:, head].sort(-1).values, largest)
    out = keys.dequantize(packed)
    assert (out[0, 0, :, :2] == torch.tensor([40.0, -30.0])).all() and (out[0, 0, :, 2] <= 1.0).all()


def test_value_outliers_are_per_token_extremes_and_exact():
    values = NuqValues(3, uniform_codebook(3), slots=4)  # 2 per side of each token's 192 elements
    x = torch.randn(1, HEADS, 16, DIM)
    x[0, 2, 5, 7], x[0, 0, 5, 1], x[0, 1, 11, 63] = 90.0, -55.0, 12.0
    packed = values.encode(x, 0)
    assert packed["outlier_value"].shape == (1, 1, 16, 4) and packed["range"].shape == (1, 1, 16, 2)
    out = values.decode(packed, 0)
    flat, original = per_token(out), per_token(x)
    for token in range(16):  # the 2 largest and 2 smallest elements of each token come back exactly (fp16)
        extremes = torch.cat([original[0, token].topk(2).indices, (-original[0, token]).topk(2).indices])
        assert torch.equal(flat[0, token, extremes], original[0, token, extremes].half().float())
    # the rest: within half a step of the token's own non-outlier range (uniform 3-bit levels, fp16 slack)
    ordered = original.sort(-1).values
    step = (ordered[..., -3] - ordered[..., 2]) / 7
    assert ((flat - original).abs() <= step[..., None] / 2 + 2e-3).all()


def test_per_head_value_vectors_keep_each_heads_extremes():
    """value_vector=head: every (token, head) has its own outliers and range, held beside its head."""
    values = NuqValues(3, uniform_codebook(3), slots=2, per_head_vectors=True)  # 1 per side of each head's 64
    x = torch.randn(1, HEADS, 16, DIM)
    x[0, 1] *= 0.01  # a quiet head: a token-wide range would flatten it to a few levels
    packed = values.encode(x, 0)
    assert packed["outlier_value"].shape == (1, 1, 16, 2 * HEADS) and packed["range"].shape == (1, HEADS, 16, 2)
    out = values.decode(packed, 0)
    for head in range(HEADS):
        original, restored = x[0, head], out[0, head]
        extremes = torch.stack([original.argmax(-1), original.argmin(-1)], -1)
        assert torch.equal(restored.gather(-1, extremes), original.gather(-1, extremes).half().float())
        ordered = original.sort(-1).values
        step = (ordered[..., -2] - ordered[..., 1]) / 7
        assert ((restored - original).abs() <= step[..., None] / 2 + 2e-3 * ordered.abs().amax()).all()


def test_stored_bits_count_codes_ranges_and_outliers(model):
    x = torch.randn(1, HEADS, 256, DIM)
    held = 0
    for codec in (NuqKeys(3, uniform_codebook(3), -torch.ones(HEADS, DIM), torch.ones(HEADS, DIM), 4, model),
                  NuqValues(3, uniform_codebook(3), 2)):
        packed = codec.quantize(x) if isinstance(codec, NuqKeys) else codec.encode(x, 0)
        assert all(t.shape[2] == 256 for t in packed.values())  # the cache appends and evicts along dim 2
        held += sum(t.numel() * t.element_size() for t in packed.values())
    bits = 8 * held / (2 * x.numel())
    # keys 3 + 4 x 24 / 192, values 3 + 2 x 24 / 192 + 32 / 192 (per-token midpoint and half range)
    assert bits == pytest.approx(3 + (4 * 24 / 192 + 2 * 24 / 192 + 32 / 192) / 2)


def test_artifact_validation_covers_the_kvquant_tensors(nuq4, model_fingerprint):
    bad = dict(nuq4.tensors, key_lower=nuq4.tensors["key_lower"][:, :2])
    with pytest.raises(KvtoolError, match="key_lower has shape"):
        Artifact.build("kvquant", nuq4.params, model_fingerprint, bad)
    with pytest.raises(KvtoolError, match="missing tensor qnorm"):
        Artifact.build("kvquant", nuq4.params, model_fingerprint, {k: v for k, v in nuq4.tensors.items() if k != "qnorm"})
    with pytest.raises(KvtoolError, match="key_signposts has shape"):  # 3-bit params want 8 signposts, not 16
        Artifact.build("kvquant", {**nuq4.params, "bits": 3}, model_fingerprint, nuq4.tensors)
    with pytest.raises(KvtoolError, match="must be one of"):
        Artifact.build("kvquant", {"bits": 5}, model_fingerprint, nuq4.tensors)


def test_nuq4_generation_agrees_with_fp16(nuq4, model, tokenizer):
    ids = tokenizer("The capital of France is Paris. The capital of Germany is", return_tensors="pt").input_ids
    kv = load(nuq4, model)
    cache = kv.make_cache(model)
    quantized = list(greedy(model, ids, cache, max_new_tokens=6))
    reference = list(greedy(model, ids, fp16_baseline(model).make_cache(model), max_new_tokens=6))
    assert quantized[:4] == reference[:4]
    assert 4 < cache.compressed_bits_per_element() < 5  # 4-bit codes plus ranges and outlier slots
    assert cache.layers[0].groups[0].keys.sink_len == 1  # the attention sink stays fp16
