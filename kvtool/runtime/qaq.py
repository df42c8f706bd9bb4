"""QAQ (arXiv 2403.04643): per-token bit widths for keys and values from the paper's error bounds, 1% outliers kept
in fp16, and an attention window of the last `window` queries before a token is quantized.

Each token t is quantized (over all elements of its head group) once the `window` queries t .. t+window-1 have attended
to it, with B = ceil(log2((max - min) / (2·√3·σ))) clamped to [min_bits, max_bits] (paper §4.1), where
  keys:   σ² = log(T³/(T-1) · σ_S² + 1) / q²   (q²: a high quantile of the scaled squared query norm, calibrated)
  values: σ  = σ_X / (√T · S)                  (S: the largest attention the token received in its window)
and T = t + window is the number of tokens when its window closes. The range [min, max] is split into 2^B segments,
each value stored as its segment index and read back as the segment's midpoint.

Storage is mixed-width for real: a token of width B holds B consecutive rows of `codes`, row k being bit k of each
of its codes ("bit plane" k), packed 1 bit per element; tokens follow each other in position order, so a token's
first row is the sum of the widths before it. Widths (uint8), fp16 min/max and the fp16 outliers with their indices
are held per token, so everything stays on the token axis (dim 2), `codes` with a variable number of rows per token.

With `host_copy` (paper §4.2, "Integration") every token's fp16 K/V is also kept in host memory, and before each
query t reads the cache the widths of all quantized tokens are recomputed for that query: T = t, and for values S the
largest attention the token received from the last `window` queries t-window .. t-1. If any width changed, the
group's codes are rebuilt from the host copy (a token re-encoded at its new width); otherwise the token whose window
just closed is appended. The newest token gets the same width either way; older ones follow the attention.
"""

from __future__ import annotations

import math

import torch

from kvtool.artifacts import Artifact
from kvtool.errors import KvtoolError
from kvtool.models import Layout
from kvtool.runtime.codec import HeadGroup, Packed, PackedLayout, TensorCodec, nonnegative, register_method
from kvtool.runtime.packing import pack_bits, unpack_bits

SQRT12 = 2 * math.sqrt(3)  # σ of the uniform error over a segment of width Δ is Δ / (2√3)


def outlier_counts(elements: int, ratio: float) -> tuple[int, int]:
    """Lowest and highest values per token kept in fp16 (the reference's kthvalue thresholds, ratio split evenly)."""
    if ratio <= 0:
        return 0, 0
    return math.ceil(ratio / 2 * elements), elements - math.floor((1 - ratio / 2) * elements)


def first_rows(widths: torch.Tensor) -> torch.Tensor:
    """Each token's first row in `codes`: the sum of the widths [n] of the tokens before it (int64)."""
    widths = widths.long()
    return widths.cumsum(0) - widths


def bit_widths(spread: torch.Tensor, sigma: torch.Tensor, min_bits: int, max_bits: int) -> torch.Tensor:
    """The paper's B = ceil(log2((max - min) / (2√3 σ))), clamped to [min_bits, max_bits]."""
    ratio = spread.double() / (SQRT12 * sigma.double())
    return torch.ceil(torch.log2(ratio.clamp_min(1e-30))).clamp(min_bits, max_bits).to(torch.uint8)


def key_sigma(tokens: torch.Tensor, tolerance: float, query_norm: float) -> torch.Tensor:
    """Largest key σ that keeps σ(S) under `tolerance` for a query of scaled squared norm `query_norm` (T tokens)."""
    tokens = tokens.double().clamp_min(2)  # the bound is for T > 1
    return torch.sqrt(torch.log1p(tokens**3 / (tokens - 1) * tolerance**2) / query_norm)


def value_sigma(tokens: torch.Tensor, tolerance: float, attention: torch.Tensor) -> torch.Tensor:
    """Largest value σ that keeps σ(X) under `tolerance` for a token receiving `attention` (T tokens)."""
    return tolerance / (tokens.double().sqrt() * attention.double().clamp_min(1e-12))


class QaqCodec(TensorCodec):
    """Mixed-width per-token quantization of one head group; subclasses say how σ follows from T (and attention)."""

    def __init__(self, heads: int, window: int, min_bits: int, max_bits: int, outliers: float,
                 host_copy: bool = False, device: torch.device | str = "cpu") -> None:
        self.heads, self.window, self.min_bits, self.max_bits, self.outliers = heads, window, min_bits, max_bits, outliers
        self.keeps_host_copy = host_copy
        # the decode kernel reads the codes as they are; with the host copy, value widths follow every position's
        # attention, which only the reference path computes
        self.layout = None if host_copy else PackedLayout("bitplanes", max_bits)
        self.device = device  # where the layer's attention runs: tokens re-encoded from the host copy go there

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        return nonnegative(visible - self.window)  # a token is read fp16 until `window` queries have seen it

    def sigma(self, start: int, count: int) -> torch.Tensor:
        """Tolerated σ for tokens start .. start + count - 1, fixed when each token's window closes."""
        raise NotImplementedError

    def sigma_for_query(self, start: int, count: int, query_position: int) -> torch.Tensor:
        """Tolerated σ for tokens start .. start + count - 1 as the query at `query_position` reads them (host copy)."""
        raise NotImplementedError

    def widths(self, lo: torch.Tensor, hi: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Widths [n] of tokens with fp16 ranges lo, hi [B, n], shared over the batch: rows hold whole tokens."""
        spread = (hi.float() - lo.float()).amax(0)
        return bit_widths(spread, sigma.to(spread.device), self.min_bits, self.max_bits)

    def encode(self, x: torch.Tensor, start: int) -> Packed:
        return self.quantize(x, self.sigma(start, x.shape[2]))

    def reencode(self, packed: Packed, host: torch.Tensor, start: int, query_position: int) -> Packed:
        sigma = self.sigma_for_query(start, host.shape[2], query_position)
        held = packed["widths"].shape[2] if packed else 0
        if held and not torch.equal(self.widths(packed["lo"][:, 0], packed["hi"][:, 0], sigma[:held]),
                                    packed["widths"][0, 0]):
            return self.quantize(host.to(self.device), sigma)  # a width changed: rebuild the codes from the host copy
        if held == host.shape[2]:
            return packed
        fresh = self.quantize(host[:, :, held:].to(self.device), sigma[held:])  # tokens whose window just closed
        return {name: torch.cat([packed[name], fresh[name]], dim=2) for name in fresh} if held else fresh

    def quantize(self, x: torch.Tensor, sigma: torch.Tensor) -> Packed:
        """Tokens x [B, H, n, D] at the widths their tolerated σ [n] allows."""
        b, h, n, d = x.shape
        flat = x.float().transpose(1, 2).reshape(b, n, h * d)  # one token's group elements together
        low, high = outlier_counts(h * d, self.outliers)
        ordered, order = flat.sort(dim=-1)
        lo = ordered[..., low].half()  # range of the values left after the outliers
        hi = ordered[..., h * d - 1 - high].half()
        widths = self.widths(lo, hi, sigma)
        step = (hi.float() - lo.float()).clamp_min(1e-8) / torch.exp2(widths.float())[None]
        levels = torch.exp2(widths.float())[None, :, None] - 1
        codes = ((flat - lo.float()[..., None]) / step[..., None]).floor().clamp_min(0).minimum(levels).to(torch.int32)
        planes = torch.stack([(codes >> k) & 1 for k in range(self.max_bits)], dim=2).to(torch.uint8)
        held = torch.arange(self.max_bits, device=widths.device)[None, :] < widths[:, None]  # [n, max_bits]
        packed = {
            "widths": widths[None, None].expand(b, 1, n).contiguous(),
            "lo": lo[:, None],
            "hi": hi[:, None],
            "codes": pack_bits(planes[:, held], 1)[:, None],  # [B, 1, Σ widths, h·d/8]: token-major, plane k in row k
        }
        if low + high:
            index = torch.cat([order[..., :low], order[..., h * d - high :]], dim=-1)
            packed["outlier_index"] = index.to(torch.uint8 if h * d <= 256 else torch.int16)[:, None]
            packed["outlier_value"] = flat.gather(-1, index).half()[:, None]
        return packed

    def row_table(self, packed: Packed) -> torch.Tensor:
        """What the decode kernel indexes the codes by: int32 [n, 2], each token's first row and its width."""
        widths = packed["widths"][0, 0]
        return torch.stack([first_rows(widths), widths.long()], dim=1).int()

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        widths = packed["widths"][0, 0].long()
        lo, hi = packed["lo"][:, 0].float(), packed["hi"][:, 0].float()
        b, n = lo.shape
        bits = unpack_bits(packed["codes"][:, 0], 1)  # [B, rows, elements]
        first = first_rows(widths)
        codes = torch.zeros(b, n, bits.shape[-1], dtype=torch.int32, device=lo.device)
        for k in range(self.max_bits):
            wide = widths > k
            if not wide.any():
                break
            codes[:, wide] |= bits[:, first[wide] + k].to(torch.int32) << k
        step = (hi - lo).clamp_min(1e-8) / torch.exp2(widths.float())[None]
        x = lo[..., None] + (codes.float() + 0.5) * step[..., None]  # the midpoint of each segment
        if "outlier_index" in packed:
            x.scatter_(-1, packed["outlier_index"][:, 0].long(), packed["outlier_value"][:, 0].float())
        return x.reshape(b, n, self.heads, -1).transpose(1, 2)


class QaqKeys(QaqCodec):
    def __init__(self, tolerance: float, query_norm: float, **settings) -> None:
        super().__init__(**settings)
        self.tolerance, self.query_norm = tolerance, query_norm

    def sigma(self, start: int, count: int) -> torch.Tensor:
        tokens = torch.arange(start, start + count) + self.window  # T when the token's window closes
        return key_sigma(tokens, self.tolerance, self.query_norm)

    def sigma_for_query(self, start: int, count: int, query_position: int) -> torch.Tensor:
        return key_sigma(torch.full((count,), query_position), self.tolerance, self.query_norm)


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
        self.received = torch.zeros(0)  # running max attention of positions pending_start ..
        self.pending_start = 0
        self.by_query: dict[int, torch.Tensor] = {}  # host copy: query position -> max attention per token position

    def observe_attention(self, weights: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor,
                          last_row: int) -> None:
        if self.keeps_host_copy:
            self.remember_queries(weights, rows, positions)
            return
        in_window = (positions[None, :] <= rows[:, None]) & (rows[:, None] < positions[None, :] + self.window)
        seen = weights.float().masked_fill(~in_window, 0).amax(dim=(0, 1, 2))  # over batch, heads, query rows
        # kept where attention runs, sized from host integers: positions after the last row got no attention
        needed = last_row + 1 - self.pending_start
        if needed <= 0:
            return
        self.received = self.received.to(seen.device)
        if needed > self.received.numel():
            self.received = torch.cat([self.received, self.received.new_zeros(needed - self.received.numel())])
        index = positions - self.pending_start
        keep = (index >= 0) & (index < needed)
        self.received.scatter_reduce_(0, torch.where(keep, index, 0), torch.where(keep, seen, 0.0), "amax")

    def sigma(self, start: int, count: int) -> torch.Tensor:
        index = torch.arange(start, start + count, device=self.received.device) - self.pending_start
        held = self.received.numel()
        attention = torch.zeros(count, device=self.received.device)
        if held:
            known = (index >= 0) & (index < held)
            attention = torch.where(known, self.received[index.clamp(0, held - 1)], attention)
        # tokens encoded before their window was observed: the widest setting
        attention = torch.where(attention > 0, attention, 1.0)
        done = max(start + count - self.pending_start, 0)
        self.received, self.pending_start = self.received[done:], self.pending_start + done
        tokens = torch.arange(start, start + count, device=attention.device) + self.window
        return value_sigma(tokens, self.tolerance, attention)

    def remember_queries(self, weights: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> None:
        """Keep each query's largest attention per token (over batch and heads), for the last `window` queries."""
        for query in rows.unique().tolist():
            received = torch.zeros(int(positions.max()) + 1, device=weights.device)
            received[positions] = weights[:, :, rows == query].float().amax(dim=(0, 1, 2))
            self.by_query[query] = received
        newest = max(self.by_query)
        self.by_query = {query: seen for query, seen in self.by_query.items() if query > newest - self.window}

    def sigma_for_query(self, start: int, count: int, query_position: int) -> torch.Tensor:
        window = [seen[start : start + count] for query, seen in self.by_query.items()
                  if query_position - self.window <= query < query_position]
        attention = torch.stack(window).amax(0) if window else torch.zeros(count)
        attention[attention <= 0] = 1.0  # tokens no query of the window was seen to attend: the widest setting
        tokens = torch.full((count,), query_position, device=attention.device)
        return value_sigma(tokens, self.tolerance, attention)


@register_method("qaq")
def qaq_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    p = artifact.params
    layout = Layout.of(model)
    if layout.sliding_windows[layer_idx] is not None:
        raise KvtoolError("qaq does not support sliding-window layers: its code rows cannot drop tokens")
    settings = dict(window=p["window"], min_bits=p["min_bits"], max_bits=p["max_bits"], outliers=p["outliers"],
                    host_copy=p["host_copy"], device=artifact.tensors["tolerance"].device)
    key_tolerance, value_tolerance = artifact.tensors["tolerance"].tolist()
    query_norm = artifact.tensors["query_norm"][layer_idx].tolist()
    if min(key_tolerance, value_tolerance, *query_norm) <= 0:
        raise KvtoolError("qaq artifact holds a tolerance or query norm that is not positive")
    heads = [list(range(layout.num_kv_heads))] if p["level"] == "layer" else [[h] for h in range(layout.num_kv_heads)]
    return [
        HeadGroup(group, QaqKeys(key_tolerance, norm, heads=len(group), **settings),
                  QaqValues(value_tolerance, heads=len(group), **settings))
        for group, norm in zip(heads, query_norm)
    ]
