"""The product-quantization codec CQ and MILLION share: each head vector is cut into sub-vectors of c contiguous
channels, and each sub-vector is stored as the index of its nearest centroid in that sub-space's codebook.

Layout (what a fused kernel reads), for a codec over H heads of head_dim D, S = D / c sub-vectors, K = 2**bits:
  codebooks  float16 in the artifact, float32 here: [H, S, K, c]; centroid k of sub-space s of head h
  "codes"    uint8 [B, H, n, S * min(bits, 8) / 8]: bits 0..7 of each sub-vector's centroid index (the whole index
             when bits <= 8), packed with runtime/packing.py: one byte per index at 8 bits; below 8, the S indices of a
             token are one little-endian bit stream, index s at stream bits s*bits .. s*bits+bits-1
  "high"     uint8 [B, H, n, S * (bits - 8) / 8], only when bits > 8: bits 8.. of the S indices, packed the same way
             (index s at stream bits s*(bits-8) ..)

Attention by asymmetric distance computation (ADC): the query is never quantized. For a decode step, a table of
query·centroid for every sub-space and centroid, [R, S, K], is built once; a key's score is the sum of its S table
entries picked by its codes. Values are read back from their centroids.
"""

from __future__ import annotations

import torch

from kvtool.artifacts import Artifact
from kvtool.runtime import kernels
from kvtool.runtime.codec import Packed, PackedLayout, TensorCodec
from kvtool.runtime.packing import pack_bits, unpack_bits

ADC_MAX_ROWS = 32  # query rows up to which scores come from lookup tables (decode steps); prefill blocks decode once
ENCODE_BLOCK = 256  # tokens assigned at once: bounds the [tokens, S, K] distance tensor


class CodebookCodec(TensorCodec):
    """Encodes [B, H, n, D] to centroid indices; `codebooks` [H, S, K, c] holds each head's sub-space codebooks."""

    def __init__(self, codebooks: torch.Tensor, bits: int) -> None:
        heads, subspaces, size, width = codebooks.shape
        if size != 1 << bits:
            raise ValueError(f"codebooks hold {size} centroids, {bits} bits index {1 << bits}")
        self.low_bits, self.high_bits = min(bits, 8), max(bits - 8, 0)
        if subspaces * self.low_bits % 8 or subspaces * self.high_bits % 8:
            raise ValueError(f"{subspaces} sub-vectors of {bits}-bit codes do not fill whole bytes")
        self.codebooks = codebooks.float()
        self.norms = self.codebooks.square().sum(-1)  # [H, S, K], for nearest-centroid search
        self.bits, self.subspaces, self.width = bits, subspaces, width
        if bits <= 8:  # no high-bit plane: the fused decode kernel reads the codes (ADC, kernels/decode.py)
            self.layout = PackedLayout("codebook", bits, width)

    # ---- storage ------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        if kernels.codebook_encodable(x, self.bits, self.width):  # one launch instead of ~27 ops per 256 tokens
            from kvtool.runtime.kernels.quantize import codebook_encode

            return {"codes": pack_bits(codebook_encode(x, self.codebooks, self.norms), self.low_bits)}
        batch, heads, tokens, _ = x.shape
        index = torch.empty(batch, heads, tokens, self.subspaces, dtype=torch.long, device=x.device)
        for lo in range(0, tokens, ENCODE_BLOCK):
            sub = x[:, :, lo : lo + ENCODE_BLOCK].float().unflatten(-1, (self.subspaces, self.width))
            # ||x - c||² ranks like ||c||² - 2 x·c
            distance = self.norms[None, :, None] - 2 * torch.einsum("bhnsc,hskc->bhnsk", sub, self.codebooks)
            index[:, :, lo : lo + ENCODE_BLOCK] = distance.argmin(-1)
        packed = {"codes": pack_bits((index & 0xFF).to(torch.uint8), self.low_bits)}
        if self.high_bits:
            packed["high"] = pack_bits((index >> 8).to(torch.uint8), self.high_bits)
        return packed

    def indices(self, packed: Packed) -> torch.Tensor:
        """Centroid index per sub-vector, int64 [B, H, n, S]."""
        index = unpack_bits(packed["codes"], self.low_bits).long()
        if self.high_bits:
            index |= unpack_bits(packed["high"], self.high_bits).long() << 8
        return index

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        index = self.indices(packed)
        heads = torch.arange(index.shape[1], device=index.device)[None, :, None, None]
        subspaces = torch.arange(self.subspaces, device=index.device)
        return self.codebooks[heads, subspaces, index].flatten(-2)  # [B, H, n, S, c] -> [B, H, n, D]

    # ---- attention ----------------------------------------------------------------------------------------
    def scores(self, query: torch.Tensor, packed: Packed, start: int) -> torch.Tensor:
        """query·key from a lookup table per query row; many rows (a prefill block) decode the keys once instead."""
        if query.shape[2] > ADC_MAX_ROWS:
            return super().scores(query, packed, start)
        return adc_scores(query, self.codebooks, self.indices(packed))


def adc_scores(query: torch.Tensor, codebooks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """query [B, H, R, D], codebooks [H, S, K, c], index [B, H, n, S] -> Σ_s table[r, s, index[n, s]], [B, H, R, n]."""
    batch, heads, rows, _ = query.shape
    subspaces, size, width = codebooks.shape[1:]
    table = torch.einsum("bhrsc,hskc->bhrsk", query.float().unflatten(-1, (subspaces, width)), codebooks)
    # flatten (s, k) so one gather per key reads its S entries: entry s*K + index[n, s]
    flat = table.flatten(-2)  # [B, H, R, S*K]
    offsets = index + torch.arange(subspaces, device=index.device) * size  # [B, H, n, S]
    picked = flat.gather(-1, offsets.flatten(-2)[:, :, None].expand(batch, heads, rows, -1))  # [B, H, R, n*S]
    return picked.unflatten(-1, (index.shape[2], subspaces)).sum(-1)


def layer_codebooks(artifact: Artifact, name: str, layer_idx: int, heads: int) -> torch.Tensor:
    """One layer's codebooks [heads, S, K, c] from an artifact tensor [layers or 1, heads or 1, S, K, c] (shared ones
    are stored once and broadcast here)."""
    stored = artifact.tensors[name]
    return stored[layer_idx if stored.shape[0] > 1 else 0].expand(heads, -1, -1, -1)
