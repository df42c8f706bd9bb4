"""One compressed token stream (the keys, or the values, of one head group of one layer).

A stream holds, in position order:
  sinks  [0, sink)            fp16, never compressed or dropped
  stored [store_start, store_end)  packed by the codec; whole units dropped from the front once out of the window
  tail   [tail_start, length)      fp16, the tokens the codec still reads in full precision

Attention is exact to the method's protocol for every query of a chunk, not only the last: a query at position t
reads token j compressed iff j < fp_from(t) (the codec's rule), so a chunked prefill sees what token-by-token
decoding would. Tokens that some queries of the chunk read compressed and others in fp16 are held in both forms
until the chunk's attention is done (`settle`).

A codec that `keeps_host_copy` (QAQ's option) changes the form of stored tokens as queries arrive: the stream also
copies every non-sink token, fp16, to host memory, and before each query position's attention hands the codec that
copy to re-encode the store for that query (`reencode_for`); the cache then attends one query position at a time.

On CUDA, a codec that asks for `encode_on_side_stream` (MILLION) encodes on a side stream (runtime/side_stream.py);
the codes land in the buffers the first time the store is read, so the main stream waits for them only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from kvtool.runtime.buffer import Buffer
from kvtool.runtime.codec import Packed, TensorCodec, nonnegative
from kvtool.runtime.side_stream import SideEncode

if TYPE_CHECKING:
    from kvtool.runtime.graphs import GraphStep

TAIL_SLACK = 16  # spare rows of a tail buffer at least (25% of its live rows above 64): few to hold at large batch
Flushes = tuple[int, int]  # flushes run ahead of decode steps: (first step, tokens), then every `tokens` steps


def held_from(store_start: int, store_end: int, tail_start: int) -> int:
    """Lowest non-sink position a stream with these bounds holds (an empty store holds none)."""
    return min(store_start, tail_start) if store_end > store_start else tail_start


class TokenStream:
    def __init__(self, codec: TensorCodec, sink: int = 0, recent: int | None = None) -> None:
        self.codec, self.sink, self.recent = codec, sink, recent
        self.length = 0
        self.sinks: torch.Tensor | None = None
        self.buffers: dict[str, Buffer] = {}  # read them through `store`
        self.encoding: SideEncode | None = None  # tokens up to store_end still being encoded on the side stream
        self.store_start = self.store_end = sink
        self.tail_buffer = Buffer(slack=TAIL_SLACK)  # read it through `tail`
        self.tail_start = sink
        self.encoded = 0  # tokens the last `encode_through` encoded
        self.graph: GraphStep | None = None  # set while a decode step is captured into a CUDA graph (graphs.py)
        self.reserved = 0  # tokens the store preallocates for (`reserve`)
        # fp16 copy in host memory of positions store_start .. length - 1, for codecs that re-encode from it
        self.host = Buffer(on_host=True) if codec.keeps_host_copy else None

    def reserve(self, tokens: int) -> None:
        """Preallocate the packed store for `tokens` positions, so long contexts append in place without regrowth
        (a windowed stream for its window alone)."""
        self.reserved = tokens if self.recent is None else min(tokens, self.recent)

    @property
    def tail(self) -> torch.Tensor | None:
        """fp16 tokens at positions tail_start .. length - 1."""
        return None if self.tail_buffer.data is None else self.tail_buffer.view()

    @property
    def store(self) -> dict[str, Buffer]:
        """The packed buffers, holding every token up to store_end."""
        self._land()
        return self.buffers

    # ---- writing ------------------------------------------------------------------------------------------
    def append(self, x: torch.Tensor) -> None:
        """Add tokens [B, H, T, D] at positions length .. length + T - 1; encode what any of them reads compressed."""
        x = x.to(torch.float16)
        into_sinks = max(0, min(self.sink - self.length, x.shape[2]))
        if into_sinks:
            part = x[:, :, :into_sinks].clone(memory_format=torch.contiguous_format)  # a view would keep all of x
            self.sinks = part if self.sinks is None else torch.cat([self.sinks, part], dim=2)
            x = x[:, :, into_sinks:]
        self.tail_buffer.append(x, graph=self.graph)
        self.length += into_sinks + x.shape[2]
        if self.host is not None:
            self.host.append(x, self.reserved)  # encoded query by query instead (`reencode_for`)
        elif not self.codec.encodes_after_attention:
            self.encode_through(self.length - 1)  # the chunk's last query reads most compressed

    def observe(self, weights: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor, last_row: int) -> None:
        """Show the codec the attention weights of query rows (the last at `last_row`); if it waited for them, encode
        what they and the next query read compressed (so that the next decode step, fused or not, finds it
        stored)."""
        self.codec.observe_attention(weights, rows, positions, last_row)
        if self.codec.encodes_after_attention and self.host is None:
            self.encode_through(last_row + 1)

    def reencode_for(self, query_position: int) -> None:
        """Host copy: let the codec re-encode the store into what the query at `query_position` reads compressed."""
        encode_to = self.fp_from(query_position)
        if self.host is None or encode_to <= self.store_start:
            return
        host = self.host.view()[:, :, : encode_to - self.store_start]
        packed = self.codec.reencode(self.packed(), host, self.store_start, query_position)
        self.buffers = {name: Buffer.of(tensor) for name, tensor in packed.items()}
        self.store_end = encode_to

    def encode_through(self, query_position: int) -> None:
        """Encode every token that the query at `query_position` reads compressed and the store lacks."""
        encode_to = self.fp_from(query_position)
        self.encoded = max(encode_to - self.store_end, 0)
        if self.encoded:
            first = self.tail_buffer.begin + self.store_end - self.tail_start  # the tail buffer's row of store_end
            if self.graph is None:
                fresh = self.tail_buffer.data[:, :, first : first + self.encoded]
            else:  # the rows a replay's step count moves on to
                fresh = self.tail_buffer.data.index_select(2, self.graph.rows(first, self.encoded))
            self._land()  # the buffers grow in position order
            if self.codec.encode_on_side_stream and fresh.is_cuda:
                self.encoding = SideEncode(self.codec, fresh, self.store_end)
            else:
                start = self.store_end if self.graph is None else self.graph.position(self.store_end, self.encoded)
                self._append_packed(self.codec.encode(fresh, start), fresh.shape[2])
            self.store_end = encode_to

    def _append_packed(self, packed: Packed, tokens: int) -> None:
        self.codec.append_packed(self.buffers, packed, tokens, self.reserved, self.graph)

    def _land(self) -> None:
        """Append the codes of a side-stream encode to the buffers (on the GPU the main stream waits; the host not)."""
        if self.encoding is not None:
            encoding, self.encoding = self.encoding, None
            self._append_packed(encoding.result(), encoding.tokens)

    @property
    def replayable(self) -> bool:
        """Whether CUDA graphs can ever replay this stream's decode steps: not where the codec re-encodes from a host
        copy, nor where it waits for attention to encode unless it encodes from a device-side position (what a
        step stores would depend on data the host reads)."""
        waits = self.codec.encodes_after_attention and not self.codec.graph_encodable
        return self.host is None and not waits

    def _encoded_by_step(self, length: int, store_end: int) -> int:
        """Tokens the decode step that brings this stream to `length` tokens encodes, with `store_end` before it:
        what its query reads compressed, or, for a codec that encodes after attention, what the next one will."""
        query = length if self.codec.encodes_after_attention else length - 1
        return max(self.fp_from(query) - store_end, 0)

    def steps_alike(self, limit: int) -> tuple[int, Flushes | None]:
        """How many decode steps from now (at most `limit`) change this stream alike: each encodes as many tokens,
        or none where a flush of held tokens runs ahead of some (`encode_ahead`: KIVI's R keys every R steps), and a
        window's first visible position moves on by one (what a window drops moves host bounds only, which a replay
        redoes: `drop_out_of_window`). A CUDA graph captured at the first replays the others (graphs.py). Also the
        flushes run ahead among them, (first step, tokens): `tokens` tokens every `tokens` steps from the first, or
        None. 0 where this stream cannot be replayed."""
        codec = self.codec
        if not self.replayable or self.length < self.sink:
            return 0, None
        store_start, store_end, tail_start, per_step, flushes = (self.store_start, self.store_end, self.tail_start,
                                                                 None, None)
        for step in range(limit):  # the step's flush ahead, append, encode and settle, on host integers
            length = self.length + step + 1
            flushed = self._flush_due(length - 1, store_end) if step else 0  # step 0's runs before the capture
            if flushed:
                flushes = flushes or (step, flushed)
                if flushed != flushes[1] or (step - flushes[0]) % flushed or per_step:
                    return step, flushes  # replays find a flush's tokens by a period; steps' encodes by a count
                store_end += flushed
                tail_start = max(tail_start, store_end)
                store_start += self._window_drop(length - 1, store_start, store_end)
            encoded = self._encoded_by_step(length, store_end)
            if step == 0 and encoded and not (codec.graph_encodable and store_end > store_start):
                return 0, None  # the encode reads a host position, or makes the store's first buffers
            store_end += encoded
            if self.recent is not None and held_from(store_start, store_end, tail_start) > length - self.recent:
                return step, flushes  # the window's start is not yet what bounds the kernel's first position
            tail_start = max(tail_start, store_end)
            store_start += self._window_drop(length, store_start, store_end)
            per_step = encoded if per_step is None else per_step
            if encoded != per_step or (encoded and flushes):
                return step, flushes
        return limit, flushes

    def _flush_due(self, length: int, store_end: int) -> int:
        """Tokens that the decode step taking this stream from `length` tokens (and `store_end`) encodes where they
        can be encoded before it: tokens held already, with none due at the step after it (a KIVI key flush, a
        MILLION window); else 0."""
        if not self.replayable or self.codec.encodes_after_attention or length < self.sink:
            return 0
        due = self._encoded_by_step(length + 1, store_end)
        held = store_end + due <= length  # the step's own token is not among them
        return due if held and not self._encoded_by_step(length + 2, store_end + due) else 0

    def encode_ahead(self) -> None:
        """Encode now, before the next decode step, what its query reads compressed where `_flush_due` allows: the
        step then changes the stream as the steps after it do, and a CUDA graph captured at it serves them all, or a
        graph captured before replays it (graphs.py). The query reads the same codes either way. The codes land at
        once and the tail keeps its room: a replay reads them and writes on where the capture left off."""
        if self._flush_due(self.length, self.store_end):
            self.encode_through(self.length)
            self._land()
            self.settle(keep_room=True)

    def make_room(self, steps: int) -> None:
        """Room in the tail and the store for `steps` decode steps' appends and encodes (flushes run ahead of them
        too), such as `steps_alike` found, without moving any buffer (a CUDA graph's replays write in place). A
        side-stream encode lands first: a captured step must not wait on an event recorded outside the capture."""
        self._land()
        self.tail_buffer.make_room(self.tail_buffer.data, steps)
        encoded = self._encoded_by_step(self.length + steps, self.store_end)  # by all of them
        for buffer in self.buffers.values() if encoded else ():
            buffer.make_room_for_tokens(encoded, self.store_end - self.store_start)

    def settle(self, keep_room: bool = False) -> None:
        """After the chunk's attention: drop fp16 copies of stored tokens, and stored units out of the window.
        `keep_room`: the tail buffer keeps its rows where they are (a flush between a CUDA graph's replays)."""
        if self.store_end > self.tail_start:
            self.tail_buffer.drop_front(self.store_end - self.tail_start)
            self.tail_start = self.store_end
            if self.graph is None and not keep_room:  # a prefill chunk's rows are gone: its room would stay in fp16
                self.tail_buffer.shrink()
        self.drop_out_of_window()

    def drop_out_of_window(self) -> None:
        """Drop the stored units the next query no longer sees. Host bounds move, no data: a CUDA graph's replays
        keep reading the store where its capture found it (graphs.py)."""
        drop = self._window_drop(self.length, self.store_start, self.store_end)
        if drop > 0:
            stored = self.store_end - self.store_start
            for buffer in self.store.values():
                buffer.drop_front(drop * buffer.rows // stored)
            if self.host is not None:
                self.host.drop_front(drop)
            self.store_start += drop

    def _window_drop(self, length: int, store_start: int, store_end: int) -> int:
        """Stored tokens a window drops from the front once `length` tokens are held: the next query (at `length`)
        sees positions > length - recent, so whole units below that go (`settle`, and `steps_alike` ahead of it)."""
        if self.recent is None or store_end <= store_start:
            return 0
        first_needed = min(length - self.recent + 1, store_end)
        return max((first_needed - store_start) // self.codec.unit * self.codec.unit, 0)

    # ---- reading ------------------------------------------------------------------------------------------
    def fp_from(self, query_positions: int | torch.Tensor) -> int | torch.Tensor:
        """First position a query reads in fp16 (sinks aside): sink + compressed count of what it sees. One query
        as a Python int (each decode step's encode, kept off torch) or a tensor of them."""
        visible = nonnegative(query_positions + 1 - self.sink)
        return self.sink + self.codec.compressed_count(visible)

    @property
    def sink_len(self) -> int:
        return 0 if self.sinks is None else self.sinks.shape[2]

    def packed(self) -> Packed:
        return {name: buffer.view() for name, buffer in self.store.items()}

    def first_position(self) -> int:
        """Lowest non-sink position this stream still holds."""
        return held_from(self.store_start, self.store_end, self.tail_start)

    def _compressed_mask(self, rows: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """[rows, end - start]: whether the query of each row reads position start+j from the compressed store."""
        positions = torch.arange(start, end, device=rows.device)
        return (positions[None, :] < self.fp_from(rows)[:, None]) & (positions[None, :] < self.store_end)

    def scores_into(self, scores: torch.Tensor, query: torch.Tensor, rows: torch.Tensor, frame_start: int) -> None:
        """Write query·key for every held position into `scores` [B, H, R, C] (frame: sinks, then frame_start..)."""
        offset = self.sink_len - frame_start  # column of absolute position p >= frame_start
        if self.sinks is not None:
            scores[..., : self.sink_len] = query @ self.sinks.float().transpose(-1, -2)
        if self.store_end > self.store_start:
            cols = slice(self.store_start + offset, self.store_end + offset)
            scores[..., cols] = self.codec.scores(query, self.packed(), self.store_start)
        if self.tail is not None and self.tail.shape[2]:
            cols = slice(self.tail_start + offset, self.length + offset)
            fresh = query @ self.tail.float().transpose(-1, -2)
            compressed = self._compressed_mask(rows, self.tail_start, self.length)
            scores[..., cols] = torch.where(compressed, scores[..., cols], fresh)

    def weighted_sum(self, weights: torch.Tensor, rows: torch.Tensor, frame_start: int) -> torch.Tensor:
        """Σ_j weights[..., j] · value_j over the frame, each value read as the query of that row reads it."""
        offset = self.sink_len - frame_start
        out = torch.zeros(*weights.shape[:-1], self._dim(), dtype=torch.float32, device=weights.device)
        if self.sinks is not None:
            out += weights[..., : self.sink_len] @ self.sinks.float()
        tail_compressed = None
        if self.tail is not None and self.tail.shape[2]:
            tail_compressed = self._compressed_mask(rows, self.tail_start, self.length)
        if self.store_end > self.store_start:
            part = weights[..., self.store_start + offset : self.store_end + offset]
            overlap = self.store_end - self.tail_start
            if tail_compressed is not None and overlap > 0:  # zero the rows' weights on tokens they read in fp16
                keep = torch.ones(part.shape[-2:], dtype=torch.bool, device=part.device)
                keep[:, part.shape[-1] - overlap :] = tail_compressed[:, :overlap]
                part = part * keep
            out += self.codec.weighted_sum(part, self.packed(), self.store_start)
        if tail_compressed is not None:
            part = weights[..., self.tail_start + offset : self.length + offset]
            out += (part * ~tail_compressed) @ self.tail.float()
        return out

    def _dim(self) -> int:
        for held in (self.tail, self.sinks):
            if held is not None:
                return held.shape[-1]
        raise RuntimeError("empty stream")

    def nbytes(self) -> int:
        return self.compressed_nbytes() + self.full_precision_nbytes()

    def compressed_nbytes(self) -> int:
        return sum(buffer.nbytes() for buffer in self.store.values())

    def compressed_elements(self) -> int:
        """Elements the compressed store stands for (tokens x heads x head_dim)."""
        if self.tail is None or self.store_end <= self.store_start:
            return 0
        batch, heads, _, dim = self.tail.shape
        return batch * heads * dim * (self.store_end - self.store_start)

    def full_precision_nbytes(self) -> int:
        return sum(fp.numel() * fp.element_size() for fp in (self.sinks, self.tail) if fp is not None)

    def host_nbytes(self) -> int:
        """Bytes of the fp16 host copy: host memory, not part of the cache (`nbytes`)."""
        return 0 if self.host is None else self.host.nbytes()
