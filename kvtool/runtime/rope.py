"""Rotate-half RoPE as transformers applies it, its inverse, and the model's own cos/sin for given positions."""

from __future__ import annotations

import torch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


def unapply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Inverse of apply_rope, also where cos/sin carry an attention scaling (cos² + sin² = scale²)."""
    return (x * cos - rotate_half(x) * sin) / (cos * cos + sin * sin)


def rope_cos_sin(model, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 cos, sin [T, D] from the model's rotary embedding at absolute `positions` [T]."""
    rotary = model.model.rotary_emb
    probe = torch.zeros(1, dtype=torch.float32, device=positions.device)
    cos, sin = rotary(probe, positions[None].to(probe.device))
    return cos[0].float(), sin[0].float()


def rope_from(model, start: int | torch.Tensor, count: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [count, D] at positions start .. start + count - 1 (`start` may be a 0-d device tensor: a CUDA
    graph's step count moves it on)."""
    return rope_cos_sin(model, torch.arange(count, device=device) + start)


def fixed_frequencies(model) -> bool:
    """Whether the model's rotary embedding keeps one inv_freq at every length (what the decode kernel reads to
    rotate keys stored before RoPE); "dynamic" and "longrope" change it with the sequence length."""
    return getattr(model.model.rotary_emb, "rope_type", "default") not in ("dynamic", "longrope")


def frequencies(model) -> tuple[torch.Tensor, float]:
    """float32 inv_freq [D / 2] and attention scaling of the model's rotary embedding: what the decode kernel rotates
    keys stored before RoPE with (where `fixed_frequencies`)."""
    rotary = model.model.rotary_emb
    return rotary.inv_freq.float().contiguous(), float(getattr(rotary, "attention_scaling", 1.0))
