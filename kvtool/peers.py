"""Peers that `kvtool report` measures beside kvtool's methods, on the same model, text and protocol.

- transformers' `QuantizedCache` (optimum-quanto and HQQ backends, the `peers` extra): adapted here so that
  `kvtool.eval.perplexity` and `kvtool.eval.passkey` run it exactly as they run a kvtool cache.
- NVIDIA kvpress presses: kvpress pins an older transformers, so they run in their own virtual environment
  (`.venv-kvpress`) through `kvtool/peers_kvpress.py`, started here as a subprocess that writes JSON.

Memory of a peer is measured from the tensors its cache holds. Floating-point tensors are counted at 2 bytes per
element, the fp16 that kvtool's cache stores (this CPU runs the model in float32, and the peers keep its dtype).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import QuantizedCache

from kvtool.errors import KvtoolError

KVPRESS_VENV = Path(__file__).resolve().parent.parent / ".venv-kvpress"
KVPRESS_PRESSES = ("SnapKVPress", "KnormPress", "ExpectedAttentionPress")


def held_bytes(obj) -> int:
    """Bytes of the tensors inside `obj` (tensors, quanto's wrapper tensors, tuples, lists, dicts), floats as fp16."""
    if isinstance(obj, torch.Tensor):
        if hasattr(obj, "__tensor_flatten__") and type(obj) is not torch.Tensor:  # quanto: packed data + scales
            names, _ = obj.__tensor_flatten__()
            return sum(held_bytes(getattr(obj, name)) for name in names)
        width = 2 if obj.is_floating_point() else obj.element_size()
        return obj.numel() * width
    if isinstance(obj, (tuple, list)):
        return sum(held_bytes(item) for item in obj)
    if isinstance(obj, dict):
        return sum(held_bytes(item) for item in obj.values())
    return 0


@dataclass(frozen=True)
class QuantizedCachePeer:
    """transformers' QuantizedCache with one backend and bit width; quacks like `kvtool.runtime.CompressedKV`.

    Its semantics (transformers' cache_utils): the first forward's tokens are quantized after that forward reads them
    in full precision; later tokens gather in a full-precision residual that, once `residual_length` tokens are
    reached, is flushed with everything before it into a re-quantized store. Evaluated in chunks of
    `residual_length` tokens, every query reads what token-by-token decoding would read, except that the first chunk
    reads itself in full precision, as a one-pass prefill of that chunk does.
    """

    backend: str
    nbits: int
    axis: int  # transformers' recommended axis per backend: 0 for quanto, 1 for HQQ
    group_size: int = 64
    residual_length: int = 128

    @property
    def name(self) -> str:
        return f"hf-quantized({self.backend},bits={self.nbits})"

    @property
    def package(self) -> str:
        return {"quanto": "optimum.quanto", "hqq": "hqq"}[self.backend]

    def unavailable(self) -> str | None:
        """Why this peer cannot run here, or None."""
        module = self.package
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'kvtool[peers]')"
        return None

    def make_cache(self, model, check_model: bool = False) -> "MeasuredQuantizedCache":
        cache = MeasuredQuantizedCache(self.backend, model.config, nbits=self.nbits, axis_key=self.axis,
                                       axis_value=self.axis, q_group_size=self.group_size,
                                       residual_length=self.residual_length)
        cache.tokens_per_forward = self.residual_length  # chunks of R read exactly what token-by-token decoding reads
        return cache


class MeasuredQuantizedCache(QuantizedCache):
    """transformers' QuantizedCache that reports the bytes it holds, as kvtool's cache does."""

    tokens_per_forward: int | None = None  # kvtool's evaluation feeds at most this many tokens per forward

    def _stores(self, with_residual: bool) -> list:
        parts = [[layer._quantized_keys, layer._quantized_values] for layer in self.layers]
        if with_residual:
            parts += [[layer.keys, layer.values] for layer in self.layers]
        return parts

    def nbytes(self) -> int:
        return held_bytes(self._stores(with_residual=True))

    def host_nbytes(self) -> int:
        return 0  # everything it holds is counted in nbytes

    def compressed_bits_per_element(self) -> float | None:
        """Bits per element of the quantized store alone (codes, scales, zero points), the residual aside."""
        stores = [store for pair in self._stores(with_residual=False) for store in pair if store is not None]
        elements = sum(_logical_elements(store) for store in stores)
        return 8.0 * held_bytes(stores) / elements if elements else None


def _logical_elements(quantized) -> int:
    """Elements a quantized store stands for: quanto's tensor has the logical shape, HQQ keeps it in its metadata."""
    if isinstance(quantized, tuple):
        return torch.Size(quantized[1]["shape"]).numel()
    return quantized.numel()


def quantized_cache_peers() -> list[QuantizedCachePeer]:
    """transformers' QuantizedCache as its documentation recommends it: quanto at 2 and 4 bits, HQQ at 2 and 4."""
    return [QuantizedCachePeer("quanto", 4, 0), QuantizedCachePeer("quanto", 2, 0),
            QuantizedCachePeer("hqq", 4, 1), QuantizedCachePeer("hqq", 2, 1)]


def kvpress_python() -> Path:
    return KVPRESS_VENV / "bin" / "python"


def start_kvpress(model_folder: Path, data_file: Path | None, out_json: Path, seq_len: int, sequences: int,
                  lengths: list[int], depths: list[float], trials: int, press_bits: list[float]) -> subprocess.Popen:
    """Start the kvpress runner in its own venv; it writes `out_json`. Raises KvtoolError if the venv is missing."""
    python = kvpress_python()
    if not python.is_file():
        raise KvtoolError(f"kvpress needs its own venv {KVPRESS_VENV}: run `make peers` in the kvtool checkout")
    command = [
        str(python), "-m", "kvtool.peers_kvpress", "--model", str(model_folder), "--out", str(out_json),
        "--seq-len", str(seq_len), "--sequences", str(sequences), "--lengths", ",".join(map(str, lengths)),
        "--depths", ",".join(map(str, depths)), "--trials", str(trials),
        "--press-bits", ",".join(map(str, press_bits)), "--presses", ",".join(KVPRESS_PRESSES),
    ]
    if data_file is not None:
        command += ["--data", str(data_file)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "HF_HUB_OFFLINE": "1"}
    log = open(out_json.with_suffix(".log"), "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def finish_kvpress(process: subprocess.Popen, out_json: Path) -> dict:
    """Wait for the runner; its JSON, or {"error": last line of its log} when it failed."""
    process.wait()
    if process.returncode == 0 and out_json.is_file():
        return json.loads(out_json.read_text())
    lines = [line for line in out_json.with_suffix(".log").read_text().splitlines() if line.strip()]
    return {"error": f"kvpress runner exited with {process.returncode}: {lines[-1] if lines else 'no output'}"}


