"""Decode steps replayed from CUDA graphs: one step through a compressed cache captured, then replayed for the
steps after it.

At batch 1 an eager decode step through the fused kernels is host-bound: Python bookkeeping and ~4 Triton launches
per layer cost the host more than the GPU's work (docs/gpu-log.md). Decode steps, though, change the cache alike:
each stream appends one token to its fp16 tail, and its store gains the same number of tokens per step (a KIVI value
leaving its window) or a unit of tokens already held every so many steps (KIVI's R keys every R steps). So one step
is captured with every write, read and kernel bound offset by a device-side step count (`GraphStep`); replay k sets
the count to k and does what that step, launched k steps later, would have done. The host side of a replayed step is
a few integer counters, moved by what the captured step moved them, and what windows drop (host bounds only: the
data stays where the capture read it). A flush of tokens already held (KIVI's keys, MILLION's window) runs eagerly
just before its step, between two replays or before a capture (`TokenStream.encode_ahead`); a replay's attention
reads each store's end from the step count, flushes included (`GraphStep.store_end`). Steps that change the cache
otherwise (the first steps, a flush that reads the new token) run eagerly.

Served: caches whose codecs encode on the main stream from a device-side position (`TensorCodec.graph_encodable`:
KIVI, KVQuant, CQ, fp16, and QAQ, whose code rows follow a device-side count and whose values, encoded after the
attention of their window, find it kept by position on the device) or outside any capture (MILLION, whose window is
encoded whole on a side stream, ahead of its step: its codes land before the replay or capture that reads them), every
layer on the fused kernels (DuoAttention's streaming windows included); sequences without padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

if TYPE_CHECKING:
    from kvtool.runtime.stream import Flushes, TokenStream

MAX_SPAN = 256  # decode steps one captured graph serves at most


class GraphStep:
    """The device-side step count of a captured decode step (0 for the step itself), how many steps the graph
    serves (`span`), and the streams whose flushes run ahead of some of them (`flushes`). The positions and rows
    it makes are made once per step: every layer asks for the same ones, and in a graph each is a kernel."""

    def __init__(self, device: torch.device, span: int, flushes: dict[TokenStream, Flushes] | None = None) -> None:
        self.steps = torch.zeros((), dtype=torch.int64, device=device)
        self.span = span
        self.flushes = flushes or {}
        self.made: dict[tuple, torch.Tensor] = {}  # read-only tensors shared by the step's layers

    def move_to(self, steps: int) -> None:
        """The step `steps` steps after the captured one (what a replay does; the step's tensors are made anew)."""
        self.steps.fill_(steps)
        self.made.clear()

    def position(self, first: int, count: int) -> torch.Tensor:
        """0-d: `first` in the captured step, `count` further on per step replayed."""
        return self._once(("position", first, count), lambda: self.steps * count + first)

    def rows(self, first: int, count: int) -> torch.Tensor:
        """Rows first .. first + count - 1 of the captured step, `count` rows further on per step replayed."""
        return self._once(("rows", first, count),
                          lambda: torch.arange(count, device=self.steps.device) + self.position(first, count))

    def store_end(self, stream: TokenStream) -> torch.Tensor:
        """0-d: the end of `stream`'s store as a replay's attention reads it: where the captured step left it, moved
        on by the tokens a step encodes and by the flushes run ahead of the steps so far."""
        end = self.position(stream.store_end, stream.encoded)
        if stream not in self.flushes:
            return end
        first, tokens = self.flushes[stream]
        return self._once(("store_end", stream.store_end, stream.encoded, first, tokens),
                          lambda: end + (self.steps + tokens - first) // tokens * tokens)

    def _once(self, key: tuple, make) -> torch.Tensor:
        """The step's tensor for `key`: made by `make` at its first use in the step, then shared."""
        if key not in self.made:
            self.made[key] = make()
        return self.made[key]


class Replays(NamedTuple):
    steps: int  # decode steps from now that one captured step can stand for
    flushes: dict[TokenStream, Flushes]  # the streams whose flushes run ahead of some of them


def replayable_steps(cache, limit: int = MAX_SPAN) -> Replays:
    """How many decode steps from now (at most `limit`) one captured step can stand for, 0 where a layer or stream
    cannot be replayed at all; and the flushes run ahead among them. Streams alike (layers of one plan) are
    simulated once."""
    found: dict[tuple, tuple[int, Flushes | None]] = {}
    flushes = {}
    for layer in cache.layers:
        if not layer.fusable:
            return Replays(0, {})
        for state in layer.groups:
            for stream in (state.keys, state.values):
                key = _stream_key(stream)
                if key is None or key not in found:
                    found[key] = stream.steps_alike(limit)
                limit = min(limit, found[key][0])
                flushes[stream] = found[key][1]
    return Replays(limit, {stream: flush for stream, flush in flushes.items() if flush and flush[0] < limit})


def _stream_key(stream) -> tuple | None:
    """What `steps_alike` reads: the codec's type and attributes (equal values, or the same tensors and objects),
    the stream's window and bounds; None where an attribute cannot be compared (a list)."""
    try:
        settings = tuple(sorted(vars(stream.codec).items()))
        key = (type(stream.codec), settings, stream.sink, stream.recent, stream.host is None, stream.length,
               stream.store_start, stream.store_end, stream.tail_start)
        hash(key)
    except TypeError:
        return None
    return key


def counter_fields(cache) -> list[tuple[object, str]]:
    """The host integers every decode step moves alike (lengths, store ends, tail bounds, buffer ends), as (object,
    name). What windows drop is not among them: `advance` redoes it per step (`window_fields`)."""
    fields = [(layer, "length") for layer in cache.layers]
    for stream in cache.streams():
        fields += [(stream, name) for name in ("length", "store_end", "tail_start")]
        fields += [(stream.tail_buffer, "begin"), (stream.tail_buffer, "end")]
        fields += [(buffer, "end") for buffer in stream.buffers.values()]
    return fields


def window_fields(cache) -> list[tuple[object, str]]:
    """The host integers window drops move: store starts and the fronts of the stores' buffers."""
    return [(obj, name) for stream in cache.streams()
            for obj, name in [(stream, "store_start"), *((buffer, "begin") for buffer in stream.buffers.values())]]


def moves_since(fields: list[tuple[object, str]], before: list[int]) -> list[tuple[object, str, int]]:
    """(object, counter, change) of the `fields` that moved since they held `before`: what a captured step moved."""
    return [(obj, name, getattr(obj, name) - old) for (obj, name), old in zip(fields, before)
            if getattr(obj, name) != old]


def advance(cache, moves: list[tuple[object, str, int]]) -> None:
    """The host side of a replayed step: the counters moved as the captured step moved them, then what windows drop
    (the data stays where the capture found it)."""
    for obj, name, change in moves:
        setattr(obj, name, getattr(obj, name) + change)
    for stream in cache.streams():
        stream.drop_out_of_window()


class GraphedDecoder:
    """Decode steps of `model` through a CompressedCache on CUDA: `decoder(ids)` for token ids [B, 1] returns the
    logits [B, vocab] of the next position, from a graph replay where one serves, else from an eager step.

    The logits of a replay are the graph's output buffer: read them before the next call."""

    def __init__(self, model, cache, max_span: int = MAX_SPAN) -> None:
        self.model, self.cache, self.max_span = model, cache, max_span
        self.graph: torch.cuda.CUDAGraph | None = None
        self.step: GraphStep | None = None
        self.first = self.end = 0  # positions the graph serves: first .. end - 1
        self.flush_steps: set[int] = set()  # replays (steps after the captured one) that flushes run ahead of
        self.moves: list[tuple[object, str, int]] = []  # (object, counter, change) of one replayed step
        self.ids: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        self.warm = False  # an eager step has run in graph form (its kernels compiled before any capture)

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        position = self.cache.get_seq_length()
        if self.graph is not None and self.first < position < self.end:
            if position - self.first in self.flush_steps:
                self.cache.encode_ahead()
            return self._replay(ids, position)
        self.graph = None
        self.cache.encode_ahead()  # a flush due at this step runs first, so that the step can be captured
        replays = replayable_steps(self.cache, self.max_span)
        if replays.steps >= 2 and self.warm:
            return self._capture(ids, position, replays)
        if replays.steps >= 1:  # eagerly, with the captured form's ops and kernels
            self.warm = True
            with self.cache.graph_step(GraphStep(ids.device, 1)) as step:
                return self._forward(ids, position, step)
        return self._forward(ids, position, None)

    def _forward(self, ids: torch.Tensor, start: int, step: GraphStep | None) -> torch.Tensor:
        from kvtool.runtime.generate import forward

        if step is None:
            return forward(self.model, ids, self.cache, logits_to_keep=1).logits[:, -1]
        # the position and the mask from the step count: a 4-d mask goes to the attention as it is
        position = (step.steps + start).expand(ids.shape[0], 1)
        width = start + step.span
        mask = torch.arange(width, device=ids.device) <= position[:, :, None, None]  # [B, 1, 1, width]
        return forward(self.model, ids, self.cache, logits_to_keep=1, position_ids=position,
                       attention_mask=mask).logits[:, -1]

    def _capture(self, ids: torch.Tensor, start: int, replays: Replays) -> torch.Tensor:
        span = replays.steps
        for stream in self.cache.streams():  # replays write in place
            stream.make_room(span)
        fields = counter_fields(self.cache)
        before = [getattr(obj, name) for obj, name in fields]
        self.ids = ids.clone()
        self.graph = torch.cuda.CUDAGraph()
        step = GraphStep(ids.device, span, replays.flushes)
        with self.cache.graph_step(step) as self.step, torch.cuda.graph(self.graph):
            self.logits = self._forward(self.ids, start, self.step)
        self.moves = moves_since(fields, before)
        self.first, self.end = start, start + span
        self.flush_steps = {s for first, tokens in replays.flushes.values() for s in range(first, span, tokens)}
        self.graph.replay()  # the captured step itself: the step count is 0
        return self.logits

    def _replay(self, ids: torch.Tensor, position: int) -> torch.Tensor:
        self.step.move_to(position - self.first)
        self.ids.copy_(ids)
        self.graph.replay()
        advance(self.cache, self.moves)
        return self.logits
