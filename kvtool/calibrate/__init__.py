"""Calibration: run a model over text and compute what a method's artifact holds.

Each method module registers one `Calibrator`; `calibrate` drives any of them the same way. This package may use
scikit-learn and faiss (the `calibrate` extra); the runtime never imports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from kvtool.artifacts import Artifact, schema_for
from kvtool.calibrate import dist
from kvtool.data import calibration_sequences, text_hash
from kvtool.errors import KvtoolError
from kvtool.models import fingerprint


@dataclass
class CalibrationContext:
    """What a calibrator works from."""

    model: torch.nn.Module
    sequences: list[torch.Tensor]
    seed: int
    progress: bool = True
    fingerprint: dict = field(default_factory=dict)
    tokenizer: object = None  # for methods that build their own prompts (DuoAttention's passkeys)


@dataclass(frozen=True)
class Calibrator:
    """One method's calibration: `run(context, params) -> tensors`, and the data it wants by default."""

    method: str
    run: Callable[[CalibrationContext, dict], dict[str, torch.Tensor]]
    samples: int = 16  # the papers' calibration sets are 16 x 2048 tokens; methods scale down where they say so
    seq_len: int = 2048
    needs_data: bool = True


CALIBRATORS: dict[str, Calibrator] = {}


def register_calibrator(calibrator: Calibrator) -> Calibrator:
    CALIBRATORS[calibrator.method] = calibrator
    return calibrator


def calibrator_for(method: str) -> Calibrator:
    from kvtool.calibrate import methods  # noqa: F401  (fills CALIBRATORS)

    schema_for(method)  # unknown names get the schema's error, listing the known methods
    if method not in CALIBRATORS:
        raise KvtoolError(f"method '{method}' has no calibrator")
    return CALIBRATORS[method]


def calibrate(
    method: str,
    model: torch.nn.Module,
    tokenizer,
    text: str,
    params: dict,
    samples: int | None = None,
    seq_len: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Artifact:
    """Calibrate `method` on `text`; returns a validated artifact (not yet written)."""
    calibrator = calibrator_for(method)
    params = schema_for(method).resolve_params(params)
    samples = calibrator.samples if samples is None else samples
    seq_len = calibrator.seq_len if seq_len is None else seq_len
    if samples <= 0 or seq_len <= 1:
        raise KvtoolError("--samples must be positive and --seq-len at least 2")
    if calibrator.needs_data and samples < dist.world_size():
        raise KvtoolError(f"--samples {samples} is fewer than the {dist.world_size()} ranks")
    max_len = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if max_len and seq_len > max_len:
        raise KvtoolError(f"--seq-len {seq_len} exceeds the model's context of {max_len} tokens")
    sequences = calibration_sequences(tokenizer, text, samples, seq_len, seed) if calibrator.needs_data else []
    model_fingerprint = fingerprint(model)
    started = time.perf_counter()
    context = CalibrationContext(model, sequences, seed, progress and dist.is_main(), model_fingerprint, tokenizer)
    tensors = calibrator.run(context, params)
    seconds = time.perf_counter() - started
    calibration = {"seed": seed, "seconds": round(seconds, 2)}
    if calibrator.needs_data:
        calibration.update(data_sha256=text_hash(text), samples=samples, seq_len=seq_len)
    return Artifact.build(method, params, model_fingerprint, tensors, calibration)
