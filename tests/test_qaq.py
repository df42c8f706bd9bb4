"""QAQ: the paper's width rule, clamp, bit-exact mixed-width planes, fp16 outliers, attention-driven value widths,
exact chunked prefill, artifact checks, a real-model run against fp16, and the host-copy option (widths recomputed
for every query, tokens re-encoded from their fp16 host copy, host bytes reported apart from the cache)."""

from __future__ import annotations

import math

import pytest
import torch

from kvtool.artifacts import Artifact
from kvtool.errors import KvtoolError
from kvtool.runtime import load
from kvtool.runtime.cache import CompressedCache, CompressedLayer
from kvtool.runtime.codec import HeadGroup
from kvtool.runtime.packing import pack_bits
from kvtool.runtime.qaq import (
    QaqKeys, QaqValues, bit_widths, first_rows, held_rows, key_sigma, outlier_counts, value_sigma,
)

SETTINGS = dict(heads=2, window=5, min_bits=1, max_bits=8, outliers=0.01)


def test_bit_widths_follow_the_paper_formula():
    generator = torch.Generator().manual_seed(0)
    spread = torch.rand(500, generator=generator) * 20 + 0.01
    sigma = torch.rand(500, generator=generator).pow(3) + 1e-4
    widths = bit_widths(spread, sigma, 0, 8)
    for s, g, b in zip(spread.tolist(), sigma.tolist(), widths.tolist()):
        assert b == min(8, max(0, math.ceil(math.log2(s / (2 * math.sqrt(3) * g)))))
    assert key_sigma(torch.tensor([100.0]), 0.01, 4.0).item() == pytest.approx(
        math.sqrt(math.log(100**3 / 99 * 0.01**2 + 1) / 4.0))
    assert value_sigma(torch.tensor([100.0]), 0.5, torch.tensor([0.2])).item() == pytest.approx(0.5 / (10 * 0.2))


@pytest.mark.parametrize("min_bits,max_bits", [(1, 8), (2, 4), (3, 3)])
def test_widths_stay_within_the_clamp(min_bits, max_bits):
    x = torch.randn(1, 2, 64, 64) * torch.logspace(-3, 1, 64)[:, None]
    for tolerance in (1e-9, 1e-2, 1e9):
        codec = QaqKeys(tolerance, 3.0, **{**SETTINGS, "min_bits": min_bits, "max_bits": max_bits})
        widths = codec.encode(x, 0)["widths"]
        assert widths.min() >= min_bits and widths.max() <= max_bits
    assert (QaqKeys(1e-9, 3.0, **{**SETTINGS, "min_bits": min_bits, "max_bits": max_bits}).encode(x, 0)["widths"]
            == max_bits).all()
    assert (QaqKeys(1e9, 3.0, **{**SETTINGS, "min_bits": min_bits, "max_bits": max_bits}).encode(x / 100, 0)["widths"]
            == min_bits).all()  # the key bound grows only logarithmically with the tolerance


@pytest.mark.parametrize("per_head", [False, True])
def test_mixed_width_codes_round_trip_bit_exact(per_head):
    """Decode reproduces every code at its own width; the codes hold exactly Σ width bits per element, vector v of
    token t has its bit plane k in row first_rows[t, v] + k."""
    x = torch.randn(1, 2, 96, 64) * torch.logspace(-3, 1, 96)[:, None]  # ranges over 4 decades: many widths
    codec = QaqKeys(0.02, 3.0, **{**SETTINGS, "outliers": 0.0, "per_head": per_head})
    vectors = 2 if per_head else 1
    packed = codec.encode(x, 0)
    widths = packed["widths"][0].T.long()
    assert widths.shape == (96, vectors) and len(set(widths.flatten().tolist())) >= 4
    flat = x.transpose(1, 2).reshape(1, 96, vectors, 128 // vectors)
    lo, hi = packed["lo"].transpose(1, 2).float(), packed["hi"].transpose(1, 2).float()
    step = (hi - lo) / torch.exp2(widths.float())
    codes = ((flat - lo[..., None]) / step[..., None]).floor().clamp_min(0)
    codes = torch.minimum(codes, torch.exp2(widths.float())[..., None] - 1)
    expected = (lo[..., None] + (codes + 0.5) * step[..., None]).reshape(1, 96, 2, 64).transpose(1, 2)
    assert torch.equal(codec.decode(packed, 0), expected)
    assert held_rows(packed)["codes"].numel() == int(widths.sum()) * 128 // vectors // 8
    first = first_rows(widths.flatten()).view(96, vectors)
    t, v = divmod(int(widths.flatten().argmax()), vectors)
    rows = packed["codes"][0, 0, first[t, v] : first[t, v] + widths[t, v]]
    planes = (codes[0, t, v].long()[None, :] >> torch.arange(int(widths[t, v]))[:, None]) & 1
    assert torch.equal(rows, pack_bits(planes.to(torch.uint8), 1))
    error = (codec.decode(packed, 0) - x).abs().transpose(1, 2).reshape(1, 96, vectors, -1)
    assert (error <= step[..., None] / 2 + 2e-3 * (hi - lo)[..., None]).all()  # half a segment (+ fp16 range rounding)


def test_per_head_vectors_equal_a_codec_per_head():
    """level=head in one codec: each head's range, width, outliers and reconstruction are those of a codec of its
    own (with its own query norm), so one group per layer stands for one group per head."""
    x = torch.randn(1, 2, 30, 64)
    x[:, 1] *= 50  # the heads' ranges differ
    per_head = QaqKeys(0.02, [3.0, 0.5], **{**SETTINGS, "per_head": True})
    together = per_head.encode(x, 7)
    for head, norm in enumerate((3.0, 0.5)):
        alone = QaqKeys(0.02, norm, **{**SETTINGS, "heads": 1})
        packed = alone.encode(x[:, head : head + 1], 7)
        assert torch.equal(together["widths"][:, head], packed["widths"][:, 0])
        assert torch.equal(together["lo"][:, head], packed["lo"][:, 0])
        assert torch.equal(per_head.decode(together, 7)[:, head], alone.decode(packed, 7)[:, 0])
    subset = per_head.for_heads([1])
    assert torch.equal(subset.decode(subset.encode(x[:, 1:], 7), 7), per_head.decode(together, 7)[:, 1:])
    assert QaqKeys(0.02, 3.0, **SETTINGS).for_heads([1]) is None  # one range over both heads cannot be split


def test_outliers_are_exact_and_counted():
    x = torch.randn(1, 2, 40, 64)
    x[0, 1, :, 7] = 100.0  # one huge and one tiny value per token
    x[0, 0, :, 3] = -80.0
    low, high = outlier_counts(128, 0.01)
    assert (low, high) == (1, 1)
    codec = QaqValues(0.5, **SETTINGS)
    packed = codec.encode(x, 0)
    assert packed["outlier_value"].shape == (1, 1, 40, 2) and packed["outlier_index"].dtype == torch.uint8
    decoded = codec.decode(packed, 0)
    assert torch.equal(decoded[0, 1, :, 7], x[0, 1, :, 7].half().float())
    assert torch.equal(decoded[0, 0, :, 3], x[0, 0, :, 3].half().float())
    assert packed["hi"].float().max() < 10 and packed["lo"].float().min() > -10  # range of what is left


def test_value_widths_grow_with_the_attention_received():
    codec = QaqValues(0.05, **SETTINGS)
    weights = torch.full((1, 1, 7, 7), 0.01)
    weights[0, 0, 4, 2] = 0.9  # token 2 is attended strongly by query 4, inside its window 2..6
    weights[0, 0, 6, 0] = 0.9  # token 0 by query 6, outside its window 0..4: not counted
    codec.observe_attention(weights, torch.arange(7), torch.arange(7), 6)
    x = torch.randn(1, 2, 1, 64).expand(1, 2, 3, 64)  # three tokens with the same values
    widths = codec.encode(x, 0)["widths"][0, 0]
    assert widths[0] == widths[1] < widths[2]
    ranges = QaqValues(0.05, **SETTINGS).encode(x[:, :, :1], 0)
    spread = ranges["hi"].float() - ranges["lo"].float()
    expected = bit_widths(spread.flatten(), value_sigma(torch.tensor([5.0, 6.0, 7.0]), 0.05,
                                                        torch.tensor([0.01, 0.01, 0.9])), 1, 8)
    assert torch.equal(widths, expected)


def _layer(host_copy: bool = False, value_tolerance: float = 0.5) -> CompressedLayer:
    settings = {**SETTINGS, "host_copy": host_copy}
    return CompressedLayer([HeadGroup([0, 1], QaqKeys(0.05, 3.0, **settings),
                                      QaqValues(value_tolerance, **settings))], 2)


def _run(layer: CompressedLayer, k, v, q, chunks) -> torch.Tensor:
    outs, lo = [], 0
    for c in chunks:
        layer.update(k[:, :, lo : lo + c], v[:, :, lo : lo + c])
        outs.append(layer.attend(q[:, :, lo : lo + c], None, 0.125))
        lo += c
    return torch.cat(outs, 1)


@pytest.mark.parametrize("host_copy", [False, True])
def test_chunked_prefill_matches_token_by_token(host_copy):
    torch.manual_seed(0)
    k, v, q = torch.randn(1, 2, 200, 64), torch.randn(1, 2, 200, 64), torch.randn(1, 4, 200, 64) * 3
    stepped = _layer(host_copy)
    stepwise = _run(stepped, k, v, q, [1] * 200)
    for chunks in ([100, 100], [37, 1, 1, 150, 11]):
        layer = _layer(host_copy)
        chunked = _run(layer, k, v, q, chunks)
        assert (chunked - stepwise).abs().max() < 1e-4
        for kind in ("keys", "values") if host_copy else ("values",):  # host copy: key widths change with T too
            one, other = getattr(layer.groups[0], kind).packed(), getattr(stepped.groups[0], kind).packed()
            assert one.keys() == other.keys() and all(torch.equal(one[name], other[name]) for name in one)
    widths = stepped.groups[0].values.packed()["widths"]
    for stream in (stepped.groups[0].keys, stepped.groups[0].values):  # the codes hold Σ widths rows, no more
        assert stream.packed()["codes"].shape[2] == stream.packed()["widths"][0].sum()
    # the window of 5 stays fp16; without the host copy token 195, whose window has closed, is stored for the next
    # query already (the host copy re-encodes before each query instead)
    assert widths.shape[2] == (195 if host_copy else 196) and len(set(widths.flatten().tolist())) > 1


def _fresh_quantization(x: torch.Tensor, width: int) -> torch.Tensor:
    """Token(s) x quantized from scratch at exactly `width` bits (a codec clamped to that width)."""
    codec = QaqValues(1.0, **{**SETTINGS, "min_bits": width, "max_bits": width})
    return codec.decode(codec.encode(x, 0), 0)


def test_host_copy_rewidens_a_token_from_its_host_copy():
    """Token 3 gets uniform attention in its window, then all of it: with the host copy its value width rises, and
    every stored token decodes as the fresh quantization of its fp16 original at its current width."""
    torch.manual_seed(0)
    k, v = torch.randn(1, 2, 40, 64), torch.randn(1, 2, 40, 64)
    q = torch.zeros(1, 4, 40, 64)  # queries 0..19 attend uniformly
    q[:, :, 20:] = 2 * k[:, :1, 3:4].repeat(1, 4, 1, 1)  # queries 20.. attend to token 3 (weight ~1)
    widths = {}
    for host_copy in (False, True):
        layer = _layer(host_copy, value_tolerance=1.0)
        _run(layer, k, v, q, [10, 30])
        values = layer.groups[0].values
        widths[host_copy] = values.packed()["widths"][0, 0].long()
    assert widths[True][3] > widths[False][3]  # without the host copy token 3 keeps the width of its window
    decoded = values.codec.decode(values.packed(), 0)
    for token, width in enumerate(widths[True].tolist()):
        fresh = _fresh_quantization(v[:, :, token : token + 1].half(), width)
        assert torch.equal(decoded[:, :, token : token + 1], fresh), token


def test_host_copy_bytes_are_reported_apart_from_the_cache():
    torch.manual_seed(0)
    k, v, q = torch.randn(1, 2, 50, 64), torch.randn(1, 2, 50, 64), torch.randn(1, 4, 50, 64)
    caches = {}
    for host_copy in (False, True):
        caches[host_copy] = CompressedCache([_layer(host_copy)])
        _run(caches[host_copy].layers[0], k, v, q, [50])
    assert caches[True].host_nbytes() == 2 * k.numel() + 2 * v.numel()  # every key and value, fp16
    assert caches[False].host_nbytes() == 0
    for cache in caches.values():  # the cache's own bytes: packed store and fp16 window, never the host copy
        assert cache.nbytes() == sum(s.compressed_nbytes() + s.full_precision_nbytes() for s in cache.streams())
        assert cache.nbytes() < caches[True].host_nbytes()


def test_artifact_checks_cover_the_qaq_tensors(model_fingerprint, model):
    layers = model_fingerprint["num_layers"]
    layer = {"level": "layer"}
    good = {"tolerance": torch.tensor([0.1, 1.0]), "query_norm": torch.ones(layers, 1)}
    Artifact.build("qaq", layer, model_fingerprint, good)
    with pytest.raises(KvtoolError, match="query_norm has shape"):
        Artifact.build("qaq", {"level": "head"}, model_fingerprint, good)
    with pytest.raises(KvtoolError, match="NaN"):
        Artifact.build("qaq", layer, model_fingerprint, {**good, "tolerance": torch.tensor([float("nan"), 1.0])})
    with pytest.raises(KvtoolError, match="within"):
        Artifact.build("qaq", {**layer, "min_bits": 3, "key_bits": 2.0}, model_fingerprint, good)
    bad = Artifact.build("qaq", layer, model_fingerprint, {**good, "tolerance": torch.tensor([0.0, 1.0])})
    with pytest.raises(KvtoolError, match="positive"):
        load(bad).make_cache(model)


def test_perplexity_reports_host_bytes(model, model_fingerprint):
    from kvtool.eval import fp16_baseline, perplexity

    layers, heads = model_fingerprint["num_layers"], model_fingerprint["num_kv_heads"]
    tensors = {"tolerance": torch.tensor([0.05, 0.5]), "query_norm": torch.ones(layers, heads)}
    kv = load(Artifact.build("qaq", {"host_copy": True}, model_fingerprint, tensors), model)
    ids = torch.arange(100, 140)
    rows = [perplexity(model, [ids], candidate, progress=False).as_dict() for candidate in (fp16_baseline(model), kv)]
    assert rows[0]["host_bytes"] == 0
    assert rows[1]["host_bytes"] == 2 * 2 * layers * heads * model_fingerprint["head_dim"] * ids.numel()
    assert rows[1]["cache_bytes"] < rows[0]["cache_bytes"]  # the host copy is not counted as cache
    assert "host_copy=True" in rows[1]["name"]


def test_calibrated_cache_generates_like_fp16(model, tokenizer):
    from kvtool.calibrate import calibrate
    from kvtool.data import load_text
    from kvtool.eval import fp16_baseline
    from kvtool.runtime.generate import greedy

    artifact = calibrate("qaq", model, tokenizer, load_text(None, "calibration"),
                         {"key_bits": 6.0, "value_bits": 5.0, "min_bits": 4}, samples=1, seq_len=256, progress=False)
    assert artifact.tensors["query_norm"].shape == (model.config.num_hidden_layers, model.config.num_key_value_heads)
    assert (artifact.tensors["tolerance"] > 0).all() and (artifact.tensors["query_norm"] > 0).all()
    prompt = tokenizer("The capital of France is Paris. The capital of Italy is", return_tensors="pt").input_ids
    kv = load(artifact, model)
    cache = kv.make_cache(model)
    compressed = list(greedy(model, prompt, cache, max_new_tokens=6))
    reference = list(greedy(model, prompt, fp16_baseline(model).make_cache(model), max_new_tokens=6))
    assert compressed[:4] == reference[:4]
    bits = cache.compressed_bits_per_element()
    assert 4.0 < bits < 9.0  # codes of 4..8 bits, plus ranges, widths and outliers
