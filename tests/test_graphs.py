"""CUDA-graph decode steps (runtime/graphs.py), what runs without a GPU: which steps one captured step can stand
for, and a model's step in the captured form (device-side positions, mask and rows) against a plain one. The
replays themselves are emulated in tests/kernel_checks.py and run on the GPU by `kvtool bench`."""

from __future__ import annotations

import types

import pytest
import torch

from kvtool import runtime
from kvtool.artifacts import Artifact
from kvtool.bench import append_without_attention, llama3_rotary
from kvtool.runtime.buffer import Buffer
from kvtool.runtime.cache import CompressedCache, CompressedLayer
from kvtool.runtime.codec import HeadGroup
from kvtool.runtime.generate import forward, prefill
from kvtool.runtime.graphs import MAX_SPAN, GraphedDecoder, GraphStep, replayable_steps
from kvtool.runtime.kivi import KiviKeys, KiviValues
from kvtool.runtime.kvquant import Codebook, NuqKeys, NuqValues
from kvtool.runtime.million import MillionCodec
from kvtool.runtime.qaq import QaqKeys, QaqValues


def filled_cache(groups: list[HeadGroup], tokens: int) -> CompressedCache:
    layer = CompressedLayer(groups, 2)
    x = torch.randn(1, 2, tokens, 16)
    append_without_attention(layer, x, x)
    layer.fusable = True  # as the first fused decode step leaves it
    return CompressedCache([layer])


def kivi() -> HeadGroup:
    """KIVI-2 on two heads, R = 32: 32 keys flushed at positions 224, 256, ...; a value encoded per step."""
    return HeadGroup([0, 1], KiviKeys(2, 32, 32), KiviValues(2, 32, 32))


def million() -> HeadGroup:
    """MILLION on two heads of 16 channels: 2 channels per 8-bit index, a window of 32."""
    books = torch.randn(2, 8, 256, 2)
    return HeadGroup([0, 1], MillionCodec(books, 8, 32), MillionCodec(books, 8, 32))


def test_replays_run_until_a_step_changes_the_cache_otherwise():
    """KIVI with R = 32: a value is encoded at every step, a group of 32 keys at positions 224, 256, ...: after 200
    tokens every step encodes alike, the key flushes running ahead of theirs (the 24th, then every 32nd), each
    between two replays; the flush at 224, where it has not run ahead, stands alone. A window's drops do not end a
    replay (replays redo them on host bounds); KVQuant's steps are all alike (keys encoded at a device-side
    position); MILLION's too, its window encoded ahead of the step it is due at, but not where that window would be
    encoded in the captured step itself; QAQ's too (a key and a value, which waits for attention, encoded per step);
    with a host copy it is never replayed."""
    flushes = lambda replays: sorted(replays.flushes.values())  # noqa: E731
    replays = replayable_steps(filled_cache([kivi()], 200))
    assert replays.steps == MAX_SPAN and flushes(replays) == [(24, 32)]
    assert replayable_steps(filled_cache([kivi()], 200), limit=5) == (5, {})
    assert replayable_steps(filled_cache([kivi()], 224)) == (1, {})
    wider = filled_cache([HeadGroup([0, 1], KiviKeys(2, 32, 64), KiviValues(2, 32, 64))], 200)  # flushes at 256
    wider.layers.append(filled_cache([kivi()], 200).layers[0])  # a layer of other settings is simulated apart
    assert flushes(replayable_steps(wider)) == [(24, 32), (56, 64)]
    # 4 sinks and a window of 64: a value encoded and one dropped at every step; the key store [132, 196) drops a
    # group when the query at 226 needs positions from 164 on, which replays redo on host bounds; the flush at 228
    # runs ahead of its step
    windowed = HeadGroup([0, 1], KiviKeys(2, 32, 32), KiviValues(2, 32, 32), sink=4, recent=64)
    replays = replayable_steps(filled_cache([windowed], 200))
    assert replays.steps == MAX_SPAN and flushes(replays) == [(28, 32)]
    # KVQuant encodes every token at its position, which a replay takes from the device: every step alike
    signposts = torch.linspace(-1, 1, 8)
    keys = NuqKeys(3, Codebook(signposts), -torch.ones(2, 16), torch.ones(2, 16), 1, llama3_rotary(16))
    kvquant = HeadGroup([0, 1], keys, NuqValues(3, Codebook(signposts), 2), sink=4)
    assert replayable_steps(filled_cache([kvquant], 200)) == (MAX_SPAN, {})
    # MILLION encodes its window of 32 whole when the token after it arrives (at 224, 256, ...), keys and values
    assert flushes(replayable_steps(filled_cache([million()], 200))) == [(24, 32), (24, 32)]
    assert replayable_steps(filled_cache([million()], 224)) == (0, {})
    assert flushes(replayable_steps(filled_cache([million()], 225))) == [(31, 32), (31, 32)]
    for host_copy, steps in ((False, MAX_SPAN), (True, 0)):
        qaq = dict(heads=2, window=5, min_bits=1, max_bits=4, outliers=0.0, host_copy=host_copy)
        group = HeadGroup([0, 1], QaqKeys(0.1, 1.0, **qaq), QaqValues(0.1, **qaq))
        assert replayable_steps(filled_cache([group], 200)) == (steps, {})


def test_a_flush_of_held_tokens_runs_ahead_of_its_step():
    """KIVI's 32 keys and MILLION's window, due at 224, encoded just before that step, as before a capture or a
    replay: the codes land at once (MILLION's from the side stream), the tail keeps its room, and the steps after it
    replay up to the next flush at 256, which runs ahead of its step in turn. KIVI's values, encoded one per step,
    are left alone."""
    for group in (kivi(), million()):
        cache = filled_cache([group], 224)
        keys = cache.layers[0].groups[0].keys
        stored, room = keys.store_end, keys.tail_buffer.data.shape[2]
        cache.encode_ahead()
        assert keys.store_end == keys.tail_start == stored + 32 and keys.encoding is None
        assert keys.tail_buffer.data.shape[2] == room
        assert replayable_steps(cache).flushes[keys] == (32, 32)
    cache = filled_cache([kivi()], 200)
    bounds = lambda: [(s.store_end, s.tail_start) for s in cache.streams()]  # noqa: E731
    before = bounds()
    cache.encode_ahead()
    assert bounds() == before


def test_room_for_replays_holds_the_flushes_among_them():
    """Room made before a capture holds every token the span encodes, flushes run ahead included: KIVI's keys
    flushed at 224 and 256 land in place."""
    cache = filled_cache([kivi()], 200)
    keys = cache.layers[0].groups[0].keys
    keys.buffers = {name: Buffer.of(buffer.view().clone()) for name, buffer in keys.buffers.items()}  # no spare rows
    keys.make_room(64)
    codes = keys.buffers["codes"].data
    for _ in range(64):
        x = torch.randn(1, 2, 1, 16)
        cache.encode_ahead()
        append_without_attention(cache.layers[0], x, x)
    assert keys.store_end == 256 and keys.buffers["codes"].data is codes


def test_room_for_a_capture_lands_a_side_stream_encode_first():
    """MILLION encodes its full window on a side stream (CUDA): the codes must be in the store before a capture, which
    must not wait on an event recorded outside it. A pending encode stands in for the side stream's here."""
    cache = filled_cache([million()], 225)
    stream = cache.layers[0].groups[0].keys
    packed = stream.codec.encode(torch.randn(1, 2, 32, 16).half(), stream.store_end)
    stream.encoding = types.SimpleNamespace(result=lambda: packed, tokens=32)
    rows = {name: buffer.rows for name, buffer in stream.buffers.items()}
    stream.make_room(4)
    assert stream.encoding is None
    assert all(stream.buffers[name].rows == rows[name] + packed[name].shape[2] for name in rows)


def qaq_artifact(fingerprint: dict) -> Artifact:
    """QAQ, a range and width per KV head, with tolerances that give mixed widths on this model."""
    norms = torch.ones(fingerprint["num_layers"], fingerprint["num_kv_heads"])
    return Artifact.build("qaq", {}, fingerprint, {"tolerance": torch.tensor([0.05, 0.5]), "query_norm": norms})


@pytest.mark.parametrize("method", ["kivi", "kvquant", "qaq"])
def test_a_step_in_the_captured_form_matches_a_plain_step(method, model, tokenizer, model_fingerprint,
                                                          uncalibrated_kvquant):
    """The embedded model, KIVI-2, KVQuant-3 and QAQ: steps with positions and a 4-d mask made from the device-side
    step count, tails and stores written at device-side rows, keys encoded at device-side positions (KVQuant rotates
    them back by it), QAQ's code rows at a device-side count and its values' attention kept by position on the
    device, give the plain steps' logits and cache contents."""
    ids = tokenizer("The cache stores keys and values for every layer. " * 20, return_tensors="pt").input_ids
    artifacts = {"kivi": lambda: Artifact.build("kivi", {"bits": 2}, model_fingerprint),
                 "kvquant": uncalibrated_kvquant, "qaq": lambda: qaq_artifact(model_fingerprint)}
    compressed = runtime.load(artifacts[method]())
    plain, graphed = compressed.make_cache(model), compressed.make_cache(model)
    token = prefill(model, ids, plain).argmax(-1, keepdim=True)
    prefill(model, ids, graphed)
    decoder = GraphedDecoder(model, graphed)
    for _ in range(3):
        start = graphed.get_seq_length()
        with torch.no_grad(), graphed.graph_step(GraphStep(token.device, 1)) as step:
            got = decoder._forward(token, start, step)
            want = forward(model, token, plain, logits_to_keep=1).logits[:, -1]
        assert torch.equal(got, want)
        token = want.argmax(-1, keepdim=True)
    for one, other in zip(plain.streams(), graphed.streams()):
        assert torch.equal(one.tail, other.tail)
        assert all(torch.equal(a, b) for a, b in zip(one.packed().values(), other.packed().values()))
