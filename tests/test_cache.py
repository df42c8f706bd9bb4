"""The compressed cache: exact chunked attention, agreement with fp16, sliding windows, memory from tensors held."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, MistralConfig, MistralForCausalLM

from kvtool import runtime
from kvtool.artifacts import Artifact
from kvtool.eval import fp16_baseline
from kvtool.models import fingerprint
from kvtool.runtime.buffer import Buffer
from kvtool.runtime.cache import CompressedLayer
from kvtool.runtime.codec import Fp16Codec, HeadGroup
from kvtool.runtime.generate import cache_keyword, forward, greedy
from kvtool.runtime.kivi import KiviKeys, KiviValues
from kvtool.runtime.stream import TAIL_SLACK


def run_layer(layer: CompressedLayer, q, k, v, chunks: list[int]) -> torch.Tensor:
    outs, lo = [], 0
    for size in chunks:
        layer.update(k[:, :, lo : lo + size], v[:, :, lo : lo + size])
        outs.append(layer.attend(q[:, :, lo : lo + size], None, 0.125))
        lo += size
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize(
    "residual, sink, recent",
    [(128, 0, None), (0, 0, None), (32, 4, None), (128, 4, 100), (0, 0, 64)],
)
def test_chunked_attention_equals_token_by_token(residual, sink, recent):
    """Each query reads each token compressed or not exactly as step-by-step decoding would."""
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 4, 300, 64), torch.randn(1, 2, 300, 64), torch.randn(1, 2, 300, 64)

    def layer():
        group = HeadGroup([0, 1], KiviKeys(2, 32, residual), KiviValues(2, 32, residual), sink, recent)
        return CompressedLayer([group], num_kv_heads=2)

    stepwise = run_layer(layer(), q, k, v, [1] * 300)
    for chunks in ([100, 100, 100], [37, 1, 1, 200, 61], [300]):
        assert torch.allclose(run_layer(layer(), q, k, v, chunks), stepwise, atol=1e-5)


def test_compressed_count_of_one_query_as_an_int_equals_the_tensor_path():
    """The decode step asks for one query's count with a Python int; chunks ask with a tensor: the same rule."""
    from kvtool.runtime.cq import CoupledCodec
    from kvtool.runtime.million import MillionCodec
    from kvtool.runtime.qaq import QaqKeys

    books = torch.zeros(1, 2, 16, 2)
    codecs = [KiviKeys(2, 32, 128), KiviKeys(2, 32, 0), KiviValues(2, 32, 128), Fp16Codec(),
              MillionCodec(books, 4, 128), MillionCodec(books, 4, 0), CoupledCodec(books, 4, 96),
              QaqKeys(0.1, 1.0, heads=1, window=64, min_bits=2, max_bits=8, outliers=0.0)]
    visible = torch.arange(0, 700)
    for codec in codecs:
        assert [codec.compressed_count(int(v)) for v in visible] == codec.compressed_count(visible).tolist(), codec


def test_streaming_group_memory_stops_growing():
    group = HeadGroup([0], Fp16Codec(), Fp16Codec(), sink=4, recent=16)
    layer = CompressedLayer([group], num_kv_heads=1)
    held = []
    for _ in range(200):
        layer.update(torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8))
        layer.attend(torch.randn(1, 1, 1, 8), None, 1.0)
        held.append(layer.nbytes())
    assert held[-1] == held[100] and held[-1] <= (4 + 16 + 1) * 8 * 2 * 2


def test_buffers_grow_in_whole_multiples_of_16_rows():
    """Batch and head strides stay divisible by 16 as buffers grow: Triton specializes the decode kernel on that,
    and a change compiled it anew inside a timed decode step (docs/gpu-log.md)."""
    buffer = Buffer(slack=1)
    for rows in (1, 7, 300, 45):
        buffer.append(torch.randn(1, 3, rows, 5))
        assert all(stride % 16 == 0 for stride in buffer.data.stride()[:2]), buffer.data.shape


def test_windowed_store_allocates_for_its_window_only():
    """A reserved context must not preallocate streaming heads' stores for it, nor may front drops grow them."""
    group = HeadGroup([0], KiviKeys(2, 32, 32), KiviValues(2, 32, 32), sink=4, recent=64)
    layer = CompressedLayer([group], num_kv_heads=1)
    for stream in (layer.groups[0].keys, layer.groups[0].values):
        stream.reserve(1 << 20)
    for _ in range(64):
        layer.update(torch.randn(1, 1, 64, 32), torch.randn(1, 1, 64, 32))
        layer.attend(torch.randn(1, 1, 1, 32), None, 1.0)
    buffers = [b for s in (layer.groups[0].keys, layer.groups[0].values) for b in s.store.values()]
    assert buffers and max(b.data.shape[2] for b in buffers) <= 1024


def test_a_prefill_chunk_leaves_no_fp16_copy_behind():
    """After a long chunk's attention the cache allocates what it holds: sinks do not keep the chunk alive (a view
    of it did: KVQuant's and Duo's caches kept a layer's whole first chunk, the prompt), nor the tail room for it."""
    group = HeadGroup([0, 1], KiviKeys(2, 32, 32), KiviValues(2, 32, 32), sink=4)
    layer = CompressedLayer([group], num_kv_heads=2)
    layer.update(torch.randn(1, 2, 1000, 32), torch.randn(1, 2, 1000, 32))
    layer.attend(torch.randn(1, 4, 1000, 32), None, 1.0)
    for stream in (layer.groups[0].keys, layer.groups[0].values):
        assert stream.sinks.untyped_storage().nbytes() == stream.sinks.numel() * 2
        assert stream.tail_buffer.data.shape[2] <= 2 * (stream.tail_buffer.rows + TAIL_SLACK) < 1000


def test_fp16_cache_matches_dynamic_cache(model, tokenizer):
    ids = tokenizer("The cache stores keys and values for every layer. " * 20, return_tensors="pt").input_ids
    with torch.no_grad():
        reference = forward(model, ids, DynamicCache(config=model.config)).logits
        cache = fp16_baseline(model).make_cache(model)
        chunked = torch.cat([forward(model, ids[:, i : i + 64], cache).logits for i in range(0, ids.shape[1], 64)], 1)
    assert (chunked - reference).abs().max() < 0.05  # fp16 rounding of the stored keys and values only
    assert cache.nbytes() == ids.shape[1] * runtime.fp16_bytes_per_token(model)


def test_kivi4_generation_matches_fp16_first_tokens(model, tokenizer, model_fingerprint):
    prompt = "Paris is the capital of France. Berlin is the capital of Germany. " * 20 + "Rome is the capital of"
    ids = tokenizer(prompt, return_tensors="pt").input_ids  # long enough that most tokens are quantized
    assert ids.shape[1] > 256
    fp16 = list(greedy(model, ids, fp16_baseline(model).make_cache(model), 8))
    kivi = runtime.load(Artifact.build("kivi", {"bits": 4}, model_fingerprint))
    cache = kivi.make_cache(model)
    assert list(greedy(model, ids, cache, 8))[:5] == fp16[:5]
    assert cache.compressed_bits_per_element() < 5.1  # 4-bit codes + fp16 scale and min per 32


def test_cache_refuses_an_artifact_for_another_model(model, model_fingerprint):
    other = Artifact.build("kivi", {}, {**model_fingerprint, "head_dim": 128})
    with pytest.raises(Exception, match="another model"):
        runtime.load(other).make_cache(model)


def test_sliding_window_model_keeps_only_its_window():
    """A Mistral-style sliding-window model (random weights, no download): compressed or not, only the window."""
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=24,
                           max_position_embeddings=256)
    tiny = MistralForCausalLM(config).eval()
    ids = torch.randint(0, 100, (1, 120))
    with torch.no_grad():
        reference = forward(tiny, ids, DynamicCache(config=config)).logits
        cache = fp16_baseline(tiny).make_cache(tiny)
        stepwise = torch.cat([forward(tiny, ids[:, i : i + 1], cache).logits for i in range(120)], 1)
        assert (stepwise - reference).abs().max() < 1e-2
        assert cache.nbytes() < 2 * 120 * runtime.fp16_bytes_per_token(tiny) / 4  # window, not 120 tokens
        kivi = runtime.load(Artifact.build("kivi", {"bits": 4, "residual": 0, "group_size": 8}, fingerprint(tiny)))
        quantized = kivi.make_cache(tiny)
        logits = torch.cat([forward(tiny, ids[:, i : i + 40], quantized).logits for i in range(0, 120, 40)], 1)
        assert torch.isfinite(logits).all() and (logits - reference).abs().max() < 0.5


def test_generate_with_a_compressed_cache_and_left_padding(model, tokenizer, model_fingerprint):
    """`model.generate(..., cache=cache)` works, batched with left padding, like the fp16 default."""
    kivi = runtime.load(Artifact.build("kivi", {"bits": 4, "residual": 32}, model_fingerprint))
    tokenizer.padding_side = "left"
    batch = tokenizer(["Hello, my name is", "The capital of France is Paris. The capital of Italy is"],
                      return_tensors="pt", padding=True)
    reference = model.generate(**batch, max_new_tokens=6, do_sample=False)
    cache = kivi.make_cache(model)
    compressed = model.generate(**batch, **{cache_keyword(model): cache}, max_new_tokens=6, do_sample=False)
    assert torch.equal(compressed[:, :-2], reference[:, :-2])
    assert cache.get_seq_length() == batch.input_ids.shape[1] + 5
