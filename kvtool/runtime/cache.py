"""The compressed cache: a transformers `Cache` whose layers hold codec-packed tensors, and the attention function
that reads them directly.

`CompressedLayer.update` stores the new keys/values and returns the layer itself in place of key/value tensors; the
attention function registered as "kvtool" recognises it and calls `CompressedLayer.attend`, so no fp16 copy of the
whole cache is ever handed to transformers. Plain tensors (a DynamicCache, or no cache) go to SDPA as usual.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from kvtool.runtime import kernels
from kvtool.runtime.codec import HeadGroup
from kvtool.runtime.graphs import GraphStep
from kvtool.runtime.stream import TokenStream

ATTENTION_NAME = "kvtool"
QUERY_BLOCK = 512  # query positions scored at once in the reference path: bounds the [rows, context] score matrix


class GroupState:
    """The key and value streams of one head group."""

    def __init__(self, group: HeadGroup) -> None:
        self.heads = group.heads
        self.sink, self.recent = group.sink, group.recent
        self.keys = TokenStream(group.keys, group.sink, group.recent)
        self.values = TokenStream(group.values, group.sink, group.recent)
        self.keeps_host_copy = group.keys.keeps_host_copy or group.values.keeps_host_copy
        # a codec that re-encodes its store before every query needs a chunk's queries one position at a time
        self.query_block = 1 if self.keeps_host_copy else QUERY_BLOCK
        self._head_tensor: torch.Tensor | None = None

    def attend(self, query, positions, last_position: int, mask, scaling, softcap) -> torch.Tensor:
        """query [B, Hq_group, T, D] at `positions` [T] (the last at `last_position`) -> [B, Hq_group, T, D], reading
        this group's compressed streams."""
        batch, q_heads, steps, dim = query.shape
        kv_heads = len(self.heads)
        per_kv = q_heads // kv_heads
        if self.keeps_host_copy:  # one query position per call
            for stream in (self.keys, self.values):
                stream.reencode_for(int(positions[0]))
        # GQA without copying keys: the query heads of a KV head become extra rows, row r is position r % steps
        rows_query = query.float().reshape(batch, kv_heads, per_kv * steps, dim) * scaling
        rows = positions.repeat(per_kv)
        length = self.keys.length
        frame_start = min(self.keys.first_position(), self.values.first_position(), self.keys.length)
        sinks = self.keys.sink_len
        frame = torch.cat([torch.arange(sinks), torch.arange(frame_start, length)]).to(query.device)

        scores = torch.full((batch, kv_heads, rows.numel(), frame.numel()), float("-inf"), device=query.device)
        self.keys.scores_into(scores, rows_query, rows, frame_start)
        if softcap:
            scores = softcap * torch.tanh(scores / softcap)
        visible = frame[None, :] <= rows[:, None]
        if self.recent is not None:
            visible &= (frame[None, :] < self.sink) | (frame[None, :] > rows[:, None] - self.recent)
        visible = visible[None, None]
        if mask is not None:  # transformers' mask [B, 1, T, length]: padding, sliding windows
            visible = visible & mask[..., frame].repeat(1, 1, per_kv, 1)
        scores = scores.masked_fill(~visible, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a fully masked row (left padding) reads nothing
        self.keys.observe(weights, rows, frame, last_position)
        self.values.observe(weights, rows, frame, last_position)
        out = self.values.weighted_sum(weights, rows, frame_start)
        return out.reshape(batch, q_heads, steps, dim)

    def settle(self) -> None:
        self.keys.settle()
        self.values.settle()

    def head_tensor(self, device: torch.device) -> torch.Tensor:
        """This group's KV heads as int32 on `device`, made once (decode steps on the GPU create no index tensors)."""
        if self._head_tensor is None or self._head_tensor.device != device:
            self._head_tensor = torch.tensor(self.heads, dtype=torch.int32, device=device)
        return self._head_tensor

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """This group's KV heads of x [B, H, T, D]: a view when they are consecutive, else a gather by the cached
        device index (indexing by a Python list copies host -> device, which stalls every decode step)."""
        first, last = self.heads[0], self.heads[-1]
        if self.heads == list(range(first, last + 1)):
            return x[:, first : last + 1]
        return x.index_select(1, self.head_tensor(x.device))

    def nbytes(self) -> int:
        return self.keys.nbytes() + self.values.nbytes()


class CompressedLayer(CacheLayerMixin):
    """One model layer's cache: a state per head group; `update` returns the layer for the attention function."""

    is_sliding = False
    is_compileable = False

    def __init__(self, groups: list[HeadGroup], num_kv_heads: int, window: int | None = None) -> None:
        super().__init__()
        covered = sorted(h for g in groups for h in g.heads)
        if covered != list(range(num_kv_heads)):
            raise ValueError(f"head groups cover KV heads {covered}, expected each of 0..{num_kv_heads - 1} once")
        for group in groups:  # sliding-window layers keep only their window, compressed or not
            if window is not None:
                group.recent = window if group.recent is None else min(group.recent, window)
        self.groups = [GroupState(g) for g in groups]
        self.fusable: bool | None = None  # whether the fused decode kernel serves this layer (decided at first use)
        self.length = 0
        self.graph: GraphStep | None = None  # set while a decode step is captured into a CUDA graph (graphs.py)

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device, self.dtype = key_states.device, key_states.dtype
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        for state in self.groups:  # a chunk whose attention was skipped must not leave overlaps behind
            state.settle()
        for state in self.groups:
            state.keys.append(state.select(key_states))
            state.values.append(state.select(value_states))
        self.length += key_states.shape[2]
        return self, self

    def attend(self, query: torch.Tensor, mask, scaling: float, softcap: float | None = None) -> torch.Tensor:
        """query [B, Hq, T, D] (post-RoPE) -> attention output [B, T, Hq, D] in the query's dtype."""
        batch, q_heads, steps, dim = query.shape
        per_kv = q_heads // sum(len(s.heads) for s in self.groups)
        if mask is not None and mask.dtype != torch.bool:
            mask = mask > torch.finfo(mask.dtype).min / 2  # additive masks: 0 attends, large negative does not
        if steps == 1 and query.is_cuda:  # decode on the GPU: one fused kernel per group reads the packed cache
            if self.fusable is None:
                self.fusable = kernels.can_fuse(self.groups, dim)
            if self.fusable:
                return kernels.attend_decode(self, query, mask, scaling, softcap)
        out = torch.empty(batch, q_heads, steps, dim, dtype=torch.float32, device=query.device)
        positions = torch.arange(self.length - steps, self.length, device=query.device)  # the chunk just appended
        for state in self.groups:
            q_index = torch.tensor([h * per_kv + i for h in state.heads for i in range(per_kv)], device=query.device)
            for lo in range(0, steps, state.query_block):
                block = slice(lo, min(lo + state.query_block, steps))
                block_mask = None if mask is None else mask[:, :, block]
                out[:, q_index, block] = state.attend(
                    query[:, q_index, block], positions[block], self.length - steps + block.stop - 1, block_mask,
                    scaling, softcap
                )
            state.settle()
        return out.transpose(1, 2).to(query.dtype)

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0  # masks always span absolute positions 0..; the layer picks its columns

    def get_max_length(self) -> int:
        return -1

    def reset(self) -> None:
        raise NotImplementedError("make a new cache with CompressedKV.make_cache instead of resetting one")

    def nbytes(self) -> int:
        return sum(state.nbytes() for state in self.groups)


class CompressedCache(Cache):
    """A transformers Cache of CompressedLayers; pass it by the keyword `generate.cache_keyword(model)` names."""

    def __init__(self, layers: list[CompressedLayer]) -> None:
        super().__init__(layers=layers)

    def reserve(self, tokens: int) -> None:
        """Preallocate every packed store for `tokens` positions (generation and bench contexts known ahead)."""
        for stream in self.streams():
            stream.reserve(tokens)

    def nbytes(self) -> int:
        """Bytes of the tensors the cache holds now (packed codes, scales, fp16 windows and sinks)."""
        return sum(layer.nbytes() for layer in self.layers)

    def host_nbytes(self) -> int:
        """Bytes held in host memory beside the cache (QAQ's full-precision copy); not counted in `nbytes`."""
        return sum(stream.host_nbytes() for stream in self.streams())

    def encode_ahead(self) -> None:
        """Before a decode step: run the flushes due at it that can run ahead (TokenStream.encode_ahead)."""
        for stream in self.streams():
            stream.encode_ahead()

    def streams(self) -> list[TokenStream]:
        return [s for layer in self.layers for g in layer.groups for s in (g.keys, g.values)]

    @contextlib.contextmanager
    def graph_step(self, step: GraphStep):
        """Within the block, decode steps write, read and launch where `step`'s device-side count moves them."""
        holders = [*self.layers, *self.streams()]
        for holder in holders:
            holder.graph = step
        try:
            yield step
        finally:
            for holder in holders:
                holder.graph = None

    def compressed_bits_per_element(self) -> float | None:
        """Bits per element of the compressed part alone (codes, scales, outliers), fp16 windows and sinks aside."""
        elements = sum(s.compressed_elements() for s in self.streams())
        return 8 * sum(s.compressed_nbytes() for s in self.streams()) / elements if elements else None


def kvtool_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Registered attention: compressed layers attend themselves; plain tensors go to SDPA (or the softcap path)."""
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    if isinstance(key, CompressedLayer):
        return key.attend(query, attention_mask, scaling, kwargs.get("softcap")), None
    if kwargs.get("softcap"):  # SDPA has no logit soft-capping (Gemma 2)
        return dense_attention(query, key, value, attention_mask, scaling, kwargs["softcap"]), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)


def dense_attention(query, key, value, mask, scaling: float, softcap: float) -> torch.Tensor:
    """Plain attention with soft-capped logits over full tensors; returns [B, T, Hq, D]."""
    per_kv = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(per_kv, dim=1), value.repeat_interleave(per_kv, dim=1)
    scores = (query.float() @ key.float().transpose(-1, -2)) * scaling
    scores = softcap * torch.tanh(scores / softcap)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    out = torch.softmax(scores, dim=-1).nan_to_num(0.0) @ value.float()
    return out.transpose(1, 2).to(query.dtype)


def kvtool_mask(*args, **kwargs):
    """SDPA-style boolean masks, never skipped: the compressed layers need them to know what each query sees."""
    kwargs["allow_is_causal_skip"] = False
    return sdpa_mask(*args, **kwargs)


def use_kvtool_attention(model) -> None:
    """Register the attention function and switch `model` to it (idempotent)."""
    AttentionInterface.register(ATTENTION_NAME, kvtool_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, kvtool_mask)
    if model.config._attn_implementation != ATTENTION_NAME:
        model.set_attn_implementation(ATTENTION_NAME)
