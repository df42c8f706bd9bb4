"""CQ and MILLION: the shared product-quantization codec (codes, packing, ADC attention), the codebook core
(weighted k-means), each method's window, and both calibrated on the real model end to end."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from kvtool import runtime
from kvtool.artifacts import Artifact
from kvtool.calibrate import calibrate
from kvtool.calibrate.codebook import (batched_kmeans, kmeans_objective, learn_codebook, learn_product_codebooks,
                                      nearest, plus_plus_seeds, weighted_means)
from kvtool.data import calibration_sequences, default_text, evaluation_sequences
from kvtool.eval import fp16_baseline, perplexity
from kvtool.runtime import kernels
from kvtool.runtime.cache import CompressedLayer
from kvtool.runtime.codebook import CodebookCodec
from kvtool.runtime.codec import HeadGroup
from kvtool.runtime.cq import CoupledCodec, PreRopeKeys
from kvtool.runtime.kivi import KiviValues
from kvtool.runtime.million import MillionCodec
from kvtool.runtime.rope import apply_rope, rope_cos_sin
from kvtool.runtime.stream import TokenStream


def reconstruct(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Brute-force nearest-centroid reconstruction of x [B, H, n, D] with codebooks [H, S, K, c]."""
    heads, subspaces, _, width = codebooks.shape
    sub = x.unflatten(-1, (subspaces, width))
    index = (sub[..., None, :] - codebooks[None, :, None]).square().sum(-1).argmin(-1)
    return codebooks[torch.arange(heads)[None, :, None, None], torch.arange(subspaces), index].flatten(-2)


@pytest.mark.parametrize("bits,width", [(8, 2), (8, 4), (10, 8), (4, 4), (2, 8)])
def test_codes_are_packed_nearest_centroids(bits, width):
    codebooks = torch.randn(3, 64 // width, 1 << bits, width)
    codec = CodebookCodec(codebooks, bits)
    x = torch.randn(2, 3, 300, 64)
    packed = codec.encode(x, 0)
    assert all(t.dtype == torch.uint8 for t in packed.values())
    held_bits = 8 * sum(t.numel() for t in packed.values()) / x.numel()
    assert held_bits == bits / width  # exactly the code bits, nothing fake-quantized
    assert torch.equal(codec.decode(packed, 0), reconstruct(x, codebooks))


@pytest.mark.parametrize("rows", [1, 3, 200])
def test_adc_attention_equals_dequantize_then_attend(rows):
    """Lookup-table scores (decode steps) and the decoding path (prefill blocks) both give query · decoded key."""
    codec = CodebookCodec(torch.randn(3, 32, 256, 2), 8)
    packed = codec.encode(torch.randn(1, 3, 500, 64), 0)
    query, weights = torch.randn(1, 3, rows, 64), torch.softmax(torch.randn(1, 3, rows, 500), -1)
    decoded = codec.decode(packed, 0)
    assert torch.allclose(codec.scores(query, packed, 0), query @ decoded.transpose(-1, -2), atol=1e-4)
    assert torch.allclose(codec.weighted_sum(weights, packed, 0), weights @ decoded, atol=1e-5)


def test_decode_step_through_the_cache_equals_dequantize_then_attend():
    """A GQA decode step over a MILLION-coded layer (no window): ADC scores, one softmax, values from centroids."""
    keys, values = MillionCodec(torch.randn(3, 32, 256, 2), 8, 0), MillionCodec(torch.randn(3, 32, 256, 2), 8, 0)
    layer = CompressedLayer([HeadGroup([0, 1, 2], keys, values)], num_kv_heads=3)
    k, v, query = torch.randn(1, 3, 301, 64), torch.randn(1, 3, 301, 64), torch.randn(1, 9, 1, 64)
    layer.update(k[:, :, :300], v[:, :, :300])
    layer.groups[0].settle()
    layer.update(k[:, :, 300:], v[:, :, 300:])
    out = layer.attend(query, None, scaling=0.125)  # [1, 1, 9, 64]
    k, v = k.half().float(), v.half().float()  # the cache codes what it receives in fp16
    k_hat, v_hat = keys.decode(keys.encode(k, 0), 0), values.decode(values.encode(v, 0), 0)
    grouped = query.view(1, 3, 3, 64) * 0.125
    expected = torch.softmax(grouped @ k_hat.transpose(-1, -2), -1) @ v_hat  # [1, 3 kv heads, 3 queries, 64]
    assert torch.allclose(out[0, 0], expected.reshape(9, 64), atol=1e-5)


def test_million_and_cq_layers_take_the_fused_kernel(model, monkeypatch):
    """Codebook codecs declare a layout the decode kernel reads (used on CUDA); CQ's pre-RoPE keys one that it
    rotates, unless the model's RoPE changes with the length; indices wider than a byte take the reference path."""
    books = torch.randn(2, 32, 256, 2)
    million = CompressedLayer([HeadGroup([0, 1], MillionCodec(books, 8, 128), MillionCodec(books, 8, 128))], 2)
    cq = CompressedLayer([HeadGroup([0, 1], PreRopeKeys(books, 8, 0, model), CoupledCodec(books, 8, 0))], 2)
    triton = importlib.util.find_spec("triton") is not None
    assert kernels.can_fuse(million.groups, 64) == triton and kernels.can_fuse(cq.groups, 64) == triton
    assert MillionCodec(torch.randn(2, 32, 1024, 2), 10, 0).layout is None
    assert PreRopeKeys(torch.randn(2, 32, 1024, 2), 10, 0, model).layout is None
    monkeypatch.setattr(model.model.rotary_emb, "rope_type", "dynamic")
    assert PreRopeKeys(books, 8, 0, model).layout is None


def test_weighted_kmeans_follows_the_weights():
    points = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [10.0, 10.0], [11.0, 10.0]]])
    single = batched_kmeans(points, 1, iterations=5, seed=0, weights=torch.tensor([[1.0, 3.0, 0.0, 0.0]]))
    assert torch.allclose(single, torch.tensor([[[0.75, 0.0]]]), atol=1e-5)  # the weighted mean
    pairs = batched_kmeans(points, 2, iterations=5, seed=0)  # two clear clusters: the brute-force optimum
    assert torch.allclose(pairs[0].sort(0).values, torch.tensor([[0.5, 0.0], [10.5, 10.0]]))
    x = torch.randn(2, 2000, 4)
    assert torch.equal(batched_kmeans(x, 16, 10, seed=1), batched_kmeans(x, 16, 10, seed=1))


def test_batched_kmeans_objective_never_increases():
    x, w = torch.randn(6, 500, 4), torch.rand(6, 500)
    objective = torch.stack([kmeans_objective(x, w, batched_kmeans(x, 32, steps, seed=3, weights=w))
                             for steps in range(6)])  # same seeds, one more Lloyd step each
    assert (objective[1:] <= objective[:-1] * (1 + 1e-5)).all() and (objective[-1] < objective[0]).all()
    centroids = torch.randn(6, 32, 4)
    brute = (x[:, :, None] - centroids[:, None]).square().sum(-1).min(-1)
    index, distance = nearest(x, centroids)
    assert torch.equal(index, brute.indices) and torch.allclose(distance, brute.values, atol=1e-4)


def test_converged_groups_leaving_the_batch_change_nothing():
    """A group leaves batched_kmeans once its assignment repeats: the same centroids, bit for bit, as every Lloyd
    step on every group."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(6, 400, 2, generator=g), torch.rand(6, 400, generator=g)
    centroids = plus_plus_seeds(x, w, 16, torch.Generator().manual_seed(7))
    changes = []  # per step, which groups' assignments changed
    index = None
    for _ in range(40):
        index, previous = nearest(x, centroids)[0], index
        changes.append(torch.ones(6, dtype=torch.bool) if previous is None else (index != previous).any(1))
        centroids = weighted_means(x, w, index, centroids)
    settled_at = torch.stack(changes).flip(0).int().argmax(0)  # steps at the end without a change, per group
    assert (settled_at > 0).all() and len(settled_at.unique()) > 1  # each group leaves early, not all at once
    assert torch.equal(batched_kmeans(x, 16, 40, seed=7, weights=w), centroids)


@pytest.mark.parametrize("width,bits", [(2, 4), (4, 2)])  # PQ 2 dims x 8 bits = 4 bits, 4 dims x 8 bits = 2 bits
def test_product_codebooks_are_immune_to_channel_outliers(width, bits):
    """MILLION's claim (docs/methods/million.md, outlier ablation): 2 of 64 key channels x32 (queries / 32, so q·k is
    unchanged) barely move PQ's logit error, while per-token scalar quantization at the same bits loses its range."""
    g = torch.Generator().manual_seed(0)
    calibration, keys, queries = torch.randn(4096, 64, generator=g), torch.randn(1, 1, 512, 64, generator=g), \
        torch.randn(1, 1, 64, 64, generator=g)
    logits = queries @ keys.transpose(-1, -2)

    def logit_error(factor: float) -> tuple[float, float]:
        scale = torch.ones(64)
        scale[torch.randperm(64, generator=torch.Generator().manual_seed(1))[:2]] = factor
        k, q = keys * scale, queries / scale
        pq = CodebookCodec(learn_product_codebooks(calibration * scale, width, 8, 10, 0)[None], 8)
        return tuple(((q @ (codec.decode(codec.encode(k, 0), 0) - k).transpose(-1, -2)).square().sum()
                      / logits.square().sum()).item() for codec in (pq, KiviValues(bits, 64, 0)))

    (pq_plain, token_plain), (pq_outliers, token_outliers) = logit_error(1), logit_error(32)
    assert pq_outliers < 2.5 * pq_plain  # measured 1.6x (4 bits), 1.3x (2 bits)
    assert token_outliers > 20 * token_plain  # measured 125x, 76x
    assert pq_outliers < token_outliers / 10  # measured 0.018 vs 0.99, 0.14 vs 15


def stream_after(codec, tokens: int) -> tuple[TokenStream, torch.Tensor]:
    stream, x = TokenStream(codec), torch.randn(1, 3, tokens, 64)
    for t in range(tokens):
        stream.append(x[:, :, t : t + 1])
        stream.settle()
    return stream, x


def test_cq_keys_are_coded_before_rope(model):
    codebooks = torch.randn(3, 16, 256, 4)
    codec = PreRopeKeys(codebooks, 8, 0, model)
    raw = torch.randn(1, 3, 40, 64)
    cos, sin = rope_cos_sin(model, torch.arange(100, 140))
    packed = codec.encode(apply_rope(raw, cos, sin), 100)
    assert torch.allclose(codec.decode(packed, 100), apply_rope(reconstruct(raw, codebooks), cos, sin), atol=1e-4)


def test_million_window_is_encoded_whole_and_cq_window_slides():
    codebooks = torch.randn(3, 32, 256, 2)
    million, x = stream_after(MillionCodec(codebooks, 8, 128), 300)
    assert million.store_end == 256 and torch.equal(million.tail, x[:, :, 256:].half())  # flushed at 129 and 257
    assert million.codec.encode_on_side_stream and million.encoding is None  # a side stream on CUDA only
    cq, x = stream_after(CoupledCodec(codebooks, 8, 128), 300)
    assert cq.store_end == 300 - 128 and torch.equal(cq.tail, x[:, :, 172:].half())


@pytest.mark.parametrize("method,params", [
    ("cq", {"channels_per_group": 4, "bits": 6, "iterations": 10}),
    ("million", {"channels_per_group": 4, "bits": 6, "codebooks": "layer", "samples_per_centroid": 16}),
])
def test_calibrated_on_the_real_model(method, params, model, tokenizer, model_fingerprint, tmp_path):
    artifact = calibrate(method, model, tokenizer, default_text("calibration"), params, samples=2, seq_len=256,
                         progress=False)
    kv = runtime.load(runtime.load(artifact).artifact.save(tmp_path / "a.safetensors"), model)
    assert "bits per element" in "\n".join(kv.artifact.schema.describe(kv.artifact))
    sequences = evaluation_sequences(tokenizer, default_text("evaluation"), 256, 1)
    base, compressed = perplexity(model, sequences, fp16_baseline(model), progress=False), \
        perplexity(model, sequences, kv, progress=False)
    assert compressed.compressed_bits == pytest.approx(6 / 4)  # codes only: uint8 bytes held / elements
    assert base.perplexity < compressed.perplexity < 3 * base.perplexity  # 1.5 bits, 512 calibration tokens


def test_wrong_sizes_are_user_errors(model_fingerprint):
    from kvtool.errors import KvtoolError

    with pytest.raises(KvtoolError, match="pack into whole bytes"):
        Artifact.build("cq", {"channels_per_group": 16, "bits": 9}, model_fingerprint, {})
    with pytest.raises(KvtoolError, match="cannot train"):
        learn_codebook(torch.randn(10, 2), 16, iterations=1, seed=0)
