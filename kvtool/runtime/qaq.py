"""QAQ (arXiv 2403.04643): per-token bit widths for keys and values from the paper's error bounds, 1% outliers kept
in fp16, and an attention window of the last `window` queries before a token is quantized.

Each token t is quantized once the `window` queries t .. t+window-1 have attended to it, with
B = ceil(log2((max - min) / (2·√3·σ))) clamped to [min_bits, max_bits] (paper §4.1), where
  keys:   σ² = log(T³/(T-1) · σ_S² + 1) / q²   (q²: a high quantile of the scaled squared query norm, calibrated)
  values: σ  = σ_X / (√T · S)                  (S: the largest attention the token received in its window)
and T = t + window is the number of tokens when its window closes. The range [min, max] is split into 2^B segments,
each value stored as its segment index and read back as the segment's midpoint.

A token is coded as `vectors` vectors: one per KV head (level=head, the paper's notation: each head its own range and
width) or one of all the group's heads (level=layer). One codec serves a layer's heads either way, so that its
bookkeeping runs once per layer and step, not once per head (docs/gpu-log.md).

Storage is mixed-width for real: a vector of width B holds B consecutive rows of `codes`, row k being bit k of each
of its codes ("bit plane" k), packed 1 bit per element; vectors follow each other in (position, vector) order, so a
vector's first row is the sum of the widths before it. Widths (uint8), fp16 min/max and the fp16 outliers with their
indices (within the vector) are held per vector and token, [B, vectors, n (, slots)], so everything stays on the
token axis (dim 2), `codes` [B, 1, rows, bytes] with a variable number of rows per token.

With `host_copy` (paper §4.2, "Integration") every token's fp16 K/V is also kept in host memory, and before each
query t reads the cache the widths of all quantized tokens are recomputed for that query: T = t, and for values S the
largest attention the token received from the last `window` queries t-window .. t-1. If any width changed, the
group's codes are rebuilt from the host copy (a token re-encoded at its new width); otherwise the token whose window
just closed is appended. The newest token gets the same width either way; older ones follow the attention.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from kvtool.artifacts import Artifact
from kvtool.errors import KvtoolError
from kvtool.models import Layout
from kvtool.runtime import kernels
from kvtool.runtime.buffer import Buffer
from kvtool.runtime.codec import HeadGroup, Packed, PackedLayout, TensorCodec, nonnegative, register_method
from kvtool.runtime.packing import pack_bits, trimmed_range, unpack_bits

if TYPE_CHECKING:
    from kvtool.runtime.graphs import GraphStep

SQRT12 = 2 * math.sqrt(3)  # σ of the uniform error over a segment of width Δ is Δ / (2√3)


def outlier_counts(elements: int, ratio: float) -> tuple[int, int]:
    """Lowest and highest values per token kept in fp16 (the reference's kthvalue thresholds, ratio split evenly)."""
    if ratio <= 0:
        return 0, 0
    return math.ceil(ratio / 2 * elements), elements - math.floor((1 - ratio / 2) * elements)


def held_rows(packed: Packed) -> Packed:
    """`packed` with its codes cut to the rows it keeps, Σ widths (the host waits for the device to learn it)."""
    return {**packed, "codes": packed["codes"][:, :, : int(packed["widths"][0].sum())]}


def first_rows(widths: torch.Tensor, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Each vector's first row in `codes`: the sum of the widths [n] before it, in (token, vector) order."""
    widths = widths.to(dtype)
    return widths.cumsum(0, dtype=dtype) - widths


def capturing() -> bool:
    """Whether a CUDA graph is being captured (the host must not wait for the device then)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


class PlaneRows(Buffer):
    """The rows of a stream's codes, appended at a row count kept on the device: how many rows a token takes follows
    from its widths, which a CUDA graph's replays compute without the host. `end` catches up with the count where
    the host may wait for the device (not in a graph's capture: the kernel finds rows through the row table)."""

    def __init__(self, most_per_token: int) -> None:
        super().__init__()
        self.count: torch.Tensor | None = None  # rows written (int64, on the rows' device)
        self.most_per_token = most_per_token  # every vector at the widest setting

    def _catch_up(self) -> None:
        if self.count is not None and not capturing():
            self.end = int(self.count)

    def view(self) -> torch.Tensor:
        self._catch_up()
        return super().view()

    def make_room_for_tokens(self, tokens: int, stored: int) -> None:
        self._catch_up()
        self.make_room(self.data, tokens * self.most_per_token)

    def append_rows(self, rows: torch.Tensor, held: torch.Tensor, capacity: int) -> None:
        """Append the first `held` (0-d, on the device) of `rows` [B, 1, r, bytes]; the others land after them, where
        the next append writes."""
        if self.count is None:
            self.count = torch.zeros((), dtype=torch.int64, device=rows.device)
        self._catch_up()
        self.make_room(rows, rows.shape[2], capacity)
        assert self.end + rows.shape[2] <= self.data.shape[2], "room made before capture"
        self.data.index_copy_(2, self.count + torch.arange(rows.shape[2], device=rows.device), rows)
        self.count += held


def bit_widths(spread: torch.Tensor, sigma: torch.Tensor, min_bits: int, max_bits: int) -> torch.Tensor:
    """The paper's B = ceil(log2((max - min) / (2√3 σ))), clamped to [min_bits, max_bits]: the least B from min_bits
    with 2^B segments as fine as the ratio (compared, not logged: exact, as the quantize kernel counts it)."""
    ratio = spread.double() / (SQRT12 * sigma.double())
    powers = torch.exp2(torch.arange(min_bits, max_bits, dtype=torch.float64, device=ratio.device))
    return (min_bits + (ratio[..., None] > powers).sum(-1)).to(torch.uint8)


def key_sigma(tokens: torch.Tensor, tolerance: float, query_norm: float) -> torch.Tensor:
    """Largest key σ that keeps σ(S) under `tolerance` for a query of scaled squared norm `query_norm` (T tokens)."""
    tokens = tokens.double().clamp_min(2)  # the bound is for T > 1
    return torch.sqrt(torch.log1p(tokens**3 / (tokens - 1) * tolerance**2) / query_norm)


def value_sigma(tokens: torch.Tensor, tolerance: float, attention: torch.Tensor) -> torch.Tensor:
    """Largest value σ that keeps σ(X) under `tolerance` for a token receiving `attention` (T tokens)."""
    return tolerance / (tokens.double().sqrt() * attention.double().clamp_min(1e-12))


class QaqCodec(TensorCodec):
    """Mixed-width per-token quantization of a head group; subclasses say how σ follows from T (and attention).

    `per_head`: one coded vector (range, width, outliers) per KV head and token, else one of all the group's heads.
    σ, widths and ranges are computed [n, vectors] (widths shared over the batch: rows hold whole tokens)."""

    def __init__(self, heads: int, window: int, min_bits: int, max_bits: int, outliers: float,
                 per_head: bool = False, host_copy: bool = False, device: torch.device | str = "cpu") -> None:
        self.heads, self.window, self.min_bits, self.max_bits, self.outliers = heads, window, min_bits, max_bits, outliers
        self.per_head = per_head
        self.vectors = heads if per_head else 1
        self.keeps_host_copy = host_copy
        # the decode kernel reads the codes as they are; with the host copy, value widths follow every position's
        # attention, which only the reference path computes
        self.layout = None if host_copy else PackedLayout("bitplanes", max_bits)
        self.graph_encodable = not host_copy  # widths, rows and positions all computed on the device
        self.device = device  # where the layer's attention runs: tokens re-encoded from the host copy go there

    def settings(self, heads: int) -> dict:
        """Constructor settings of this codec for `heads` of its heads (`for_heads`)."""
        return dict(heads=heads, window=self.window, min_bits=self.min_bits, max_bits=self.max_bits,
                    outliers=self.outliers, per_head=self.per_head, host_copy=self.keeps_host_copy, device=self.device)

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        return nonnegative(visible - self.window)  # a token is read fp16 until `window` queries have seen it

    def sigma(self, start: int, count: int) -> torch.Tensor:
        """Tolerated σ [count, vectors] for tokens start .. start + count - 1, fixed when each token's window
        closes."""
        raise NotImplementedError

    def sigma_for_query(self, start: int, count: int, query_position: int) -> torch.Tensor:
        """Tolerated σ [count, vectors] for tokens start .. start + count - 1 as the query at `query_position` reads
        them (host copy)."""
        raise NotImplementedError

    def widths(self, lo: torch.Tensor, hi: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Widths [n, vectors] of vectors with ranges lo, hi [B, n, vectors] (fp16 values), shared over the batch."""
        spread = (hi.float() - lo.float()).amax(0)
        return bit_widths(spread, sigma.to(spread.device), self.min_bits, self.max_bits)

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        return self.quantize(x, self.sigma(start, x.shape[2]))

    def append_packed(self, buffers: dict[str, Buffer], packed: Packed, tokens: int, reserved: int,
                      graph: GraphStep | None) -> None:
        per_token = {name: tensor for name, tensor in packed.items() if name != "codes"}
        super().append_packed(buffers, per_token, tokens, reserved, graph)
        held = packed["widths"][0].sum()
        capacity = 0 if capturing() else -(-reserved * int(held) // tokens)
        buffers.setdefault("codes", PlaneRows(self.vectors * self.max_bits)).append_rows(packed["codes"], held,
                                                                                         capacity)

    def reencode(self, packed: Packed, host: torch.Tensor, start: int, query_position: int) -> Packed:
        sigma = self.sigma_for_query(start, host.shape[2], query_position)
        held = packed["widths"].shape[2] if packed else 0
        if held and not torch.equal(self.widths(packed["lo"].transpose(1, 2), packed["hi"].transpose(1, 2),
                                                sigma[:held]), packed["widths"][0].T):
            return held_rows(self.quantize(host.to(self.device), sigma))  # a width changed: rebuild from the copy
        if held == host.shape[2]:
            return packed
        fresh = held_rows(self.quantize(host[:, :, held:].to(self.device), sigma[held:]))  # windows just closed
        return {name: torch.cat([packed[name], fresh[name]], dim=2) for name in fresh} if held else fresh

    def quantize(self, x: torch.Tensor, sigma: torch.Tensor) -> Packed:
        """Tokens x [B, H, n, D] at the widths their tolerated σ [n, vectors] allows. `codes` holds every plane up
        to max_bits of each vector: the Σ widths rows to keep first, in (token, vector, plane) order, then the others
        (shapes that do not depend on the widths, as a CUDA graph needs; `held_rows` drops the others)."""
        b, h, n, d = x.shape
        size = h * d // self.vectors
        low, high = outlier_counts(size, self.outliers)
        if kernels.token_encodable(x):  # three launches instead of some ninety small ones
            from kvtool.runtime.kernels.quantize import bitplane_quantize

            spread_bound = SQRT12 * sigma.to(x.device, torch.float64)
            return bitplane_quantize(x, spread_bound, self.vectors, self.min_bits, self.max_bits, low, high)
        flat = x.float().transpose(1, 2).reshape(b, n, self.vectors, size)  # one vector's elements together
        index, lo, hi = trimmed_range(flat, low, high)
        lo, hi = lo.half(), hi.half()  # range of the values left after the outliers
        lo32, hi32 = lo.float(), hi.float()  # the range as decode reads it, converted once (each op is a launch)
        widths = self.widths(lo32, hi32, sigma)
        segments = torch.exp2(widths.float())
        step = (hi32 - lo32).clamp_min(1e-8) / segments
        codes = ((flat - lo32[..., None]) / step[..., None]).floor().clamp_min(0).minimum(segments[..., None] - 1)
        codes = codes.to(torch.int32)
        bit = torch.arange(self.max_bits, device=widths.device)
        planes = ((codes[..., None, :] >> bit[:, None]) & 1).to(torch.uint8)  # [B, n, vectors, max_bits, size]
        kept_first = torch.argsort((bit >= widths[..., None]).flatten().to(torch.uint8), stable=True)
        # per vector and token [B, vectors, n, ...]: a head's reads in the kernel are contiguous
        packed = {
            "widths": widths.T[None].expand(b, self.vectors, n).contiguous(),
            "lo": lo.transpose(1, 2).contiguous(),
            "hi": hi.transpose(1, 2).contiguous(),
            # [B, 1, n · vectors · max_bits, size / 8]: (token, vector)-major, a vector's plane k in its row k
            "codes": pack_bits(planes.flatten(1, 3)[:, kept_first], 1)[:, None],
        }
        if low + high:  # index [B, n, vectors, slots]
            packed["outlier_index"] = index.to(torch.uint8 if size <= 256 else torch.int16).transpose(1, 2).contiguous()
            packed["outlier_value"] = flat.gather(-1, index).half().transpose(1, 2).contiguous()
        return packed

    def row_table(self, widths: torch.Tensor) -> torch.Tensor:
        """What the decode kernel indexes the codes by: of the tokens' widths [B, vectors, n], int32
        [vectors, n, 2], each vector's first row and width."""
        widths = widths[0].T.int()  # [n, vectors]: rows follow each other in this order
        first = first_rows(widths.flatten(), torch.int32).view(widths.shape)  # int32 throughout: fewer launches
        return torch.stack([first, widths], dim=-1).transpose(0, 1).contiguous()

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        widths = packed["widths"][0].T.long()  # [n, vectors]
        lo, hi = packed["lo"].transpose(1, 2).float(), packed["hi"].transpose(1, 2).float()
        b, n, vectors = lo.shape
        bits = unpack_bits(packed["codes"][:, 0], 1)  # [B, rows, size]
        first = first_rows(widths.flatten()).view(n, vectors)
        codes = torch.zeros(b, n, vectors, bits.shape[-1], dtype=torch.int32, device=lo.device)
        for k in range(self.max_bits):
            wide = widths > k
            if not wide.any():
                break
            codes[:, wide] |= bits[:, first[wide] + k].to(torch.int32) << k
        step = (hi - lo).clamp_min(1e-8) / torch.exp2(widths.float())
        x = lo[..., None] + (codes.float() + 0.5) * step[..., None]  # the midpoint of each segment
        if "outlier_index" in packed:
            index = packed["outlier_index"].transpose(1, 2).long()  # [B, n, vectors, slots]
            x.scatter_(-1, index, packed["outlier_value"].transpose(1, 2).float())
        return x.reshape(b, n, self.heads, -1).transpose(1, 2)

    def by_vector(self, weights: torch.Tensor) -> torch.Tensor:
        """Largest of weights [B, H, R, F] over batch, rows and each vector's heads: [vectors, F]."""
        return weights.float().unflatten(1, (self.vectors, -1)).amax(dim=(0, 2, 3))


class QaqKeys(QaqCodec):
    """`query_norm`: the calibrated quantile of the scaled squared query norm, one per vector (or one for all)."""

    def __init__(self, tolerance: float, query_norm: float | list[float], **settings) -> None:
        super().__init__(**settings)
        self.tolerance = tolerance
        self.query_norm = torch.tensor(query_norm, dtype=torch.float64).expand(self.vectors).contiguous()
        self.norm_on: dict[torch.device, torch.Tensor] = {}  # query_norm copied once per device (not in a capture)

    def for_heads(self, positions: list[int]) -> QaqKeys | None:
        if not self.per_head:
            return None  # one range over all the group's heads: a subset would change it
        return QaqKeys(self.tolerance, self.query_norm[positions].tolist(), **self.settings(len(positions)))

    def sigma(self, start: int | torch.Tensor, count: int) -> torch.Tensor:
        device = start.device if isinstance(start, torch.Tensor) else torch.device("cpu")
        if device not in self.norm_on:
            self.norm_on[device] = self.query_norm.to(device)
        norm = self.norm_on[device]
        tokens = start + torch.arange(count, device=device) + self.window  # T when the token's window closes
        return key_sigma(tokens[:, None], self.tolerance, norm)

    def sigma_for_query(self, start: int, count: int, query_position: int) -> torch.Tensor:
        return key_sigma(torch.full((count, 1), query_position), self.tolerance, self.query_norm)


class QaqValues(QaqCodec):
    """Value widths follow the attention each token received from the queries of its window (paper §4.2).

    Attention weights depend on keys only, so a chunk's weights are all known before any of its values is read:
    values are encoded after them, and chunked prefill stays exact. With a host copy the widths follow instead the
    attention of the last `window` queries before the reading one (the cache then attends one query at a time).
    """

    encodes_after_attention = True

    def __init__(self, tolerance: float, **settings) -> None:
        super().__init__(**settings)
        self.tolerance = tolerance
        # the largest attention each of the last `slots` positions received, position p in slot p % slots
        # [vectors, slots]: a ring, so that a CUDA graph's replays find a position's slot from the device
        self.received = torch.zeros(self.vectors, 0)
        self.by_query: dict[int, torch.Tensor] = {}  # host copy: query position -> max attention [vectors, positions]

    def for_heads(self, positions: list[int]) -> QaqValues | None:
        return QaqValues(self.tolerance, **self.settings(len(positions))) if self.per_head else None

    def observe_attention(self, weights: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor,
                          last_row: int) -> None:
        if self.keeps_host_copy:
            self.remember_queries(weights, rows, positions)
            return
        # the positions not yet encoded: the rows' own and the `window` before the first (a host bound on them)
        self.fit_ring(rows.numel() + self.window, rows)
        slots = self.received.shape[1]
        # positions inside some row's window span fewer than `slots`: no two of them share a slot
        in_window = (positions[None, :] <= rows[:, None]) & (rows[:, None] < positions[None, :] + self.window)
        seen = self.by_vector(weights.masked_fill(~in_window, 0))  # [vectors, F]
        self.received.index_fill_(1, rows % slots, 0.0)  # the rows' own positions arrive: their slots start afresh
        self.received.scatter_reduce_(1, (positions % slots).expand_as(seen), seen, "amax")

    def fit_ring(self, needed: int, rows: torch.Tensor) -> None:
        """A ring of at least `needed` slots on the rows' device, the last positions before the rows kept."""
        held = self.received.shape[1]
        if held >= needed and self.received.device == rows.device:
            return
        slots = 1 << (max(needed, held) - 1).bit_length()
        ring = torch.zeros(self.vectors, slots, device=rows.device)
        if held:
            before = rows.min() - held + torch.arange(held, device=rows.device)
            before = before[before >= 0]
            ring[:, before % slots] = self.received.to(rows.device)[:, before % held]
        self.received = ring

    def sigma(self, start: int | torch.Tensor, count: int) -> torch.Tensor:
        positions = start + torch.arange(count, device=self.received.device)
        attention = torch.zeros(count, self.vectors, device=self.received.device)
        if self.received.shape[1]:
            attention = self.received[:, positions % self.received.shape[1]].T
        # tokens encoded before their window was observed: the widest setting
        attention = torch.where(attention > 0, attention, 1.0)
        return value_sigma(positions[:, None] + self.window, self.tolerance, attention)

    def remember_queries(self, weights: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> None:
        """Keep each query's largest attention per vector and token, for the last `window` queries."""
        for query in rows.unique().tolist():
            received = torch.zeros(self.vectors, int(positions.max()) + 1, device=weights.device)
            received[:, positions] = self.by_vector(weights[:, :, rows == query])
            self.by_query[query] = received
        newest = max(self.by_query)
        self.by_query = {query: seen for query, seen in self.by_query.items() if query > newest - self.window}

    def sigma_for_query(self, start: int, count: int, query_position: int) -> torch.Tensor:
        window = [seen[:, start : start + count] for query, seen in self.by_query.items()
                  if query_position - self.window <= query < query_position]
        attention = torch.stack(window).amax(0).T if window else torch.zeros(count, self.vectors)
        attention[attention <= 0] = 1.0  # tokens no query of the window was seen to attend: the widest setting
        tokens = torch.full((count, 1), query_position, device=attention.device)
        return value_sigma(tokens, self.tolerance, attention)


@register_method("qaq")
def qaq_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    p = artifact.params
    layout = Layout.of(model)
    if layout.sliding_windows[layer_idx] is not None:
        raise KvtoolError("qaq does not support sliding-window layers: its code rows cannot drop tokens")
    heads = layout.num_kv_heads
    settings = dict(heads=heads, window=p["window"], min_bits=p["min_bits"], max_bits=p["max_bits"],
                    outliers=p["outliers"], per_head=p["level"] == "head", host_copy=p["host_copy"],
                    device=artifact.tensors["tolerance"].device)
    key_tolerance, value_tolerance = artifact.tensors["tolerance"].tolist()
    query_norm = artifact.tensors["query_norm"][layer_idx].tolist()
    if min(key_tolerance, value_tolerance, *query_norm) <= 0:
        raise KvtoolError("qaq artifact holds a tolerance or query norm that is not positive")
    # one group for the layer's heads at either level: per-head ranges and widths are the codec's vectors
    return [HeadGroup(list(range(heads)), QaqKeys(key_tolerance, query_norm, **settings),
                      QaqValues(value_tolerance, **settings))]
