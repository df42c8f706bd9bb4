"""The artifact: one .safetensors file with a method's tensors and versioned, checksummed metadata.

This package imports neither `calibrate` nor `runtime`: it is the contract between them (docs/artifact-format.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from kvtool import __version__
from kvtool.artifacts.schema import SCHEMAS, Param, Schema, schema_for
from kvtool.errors import KvtoolError

FORMAT_VERSION = 2  # 2: the fingerprint hashes K/V weights as float16 (1: float32)
MAX_HEADER_BYTES = 16 << 20  # a kvtool header is a few KB; anything near this is not ours
PREFIX = "kvtool."

__all__ = ["Artifact", "FORMAT_VERSION", "SCHEMAS", "Param", "Schema", "schema_for", "load_artifact", "tensor_checksum"]


@dataclass
class Artifact:
    """A method, its parameters and tensors, and the model it was made for."""

    method: str
    params: dict
    fingerprint: dict
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # data hash, samples, seq_len, seed, seconds
    created: str = ""
    tool_version: str = __version__

    @classmethod
    def build(cls, method: str, params: dict, fingerprint: dict, tensors=None, calibration=None) -> "Artifact":
        """Resolve parameters against the method's schema and check the tensors; raises KvtoolError."""
        schema = schema_for(method)
        artifact = cls(method, schema.resolve_params(params), fingerprint, dict(tensors or {}), dict(calibration or {}))
        artifact.validate()
        return artifact

    def to(self, device: torch.device | str) -> "Artifact":
        """The same artifact with its tensors on `device` (itself if they are there already)."""
        if all(t.device == torch.device(device) for t in self.tensors.values()):
            return self
        return replace(self, tensors={name: t.to(device) for name, t in self.tensors.items()})

    @property
    def schema(self) -> Schema:
        return schema_for(self.method)

    def validate(self) -> None:
        """Every tensor the schema asks for, with its shape and dtype, finite; nothing else."""
        expected = self.schema.tensors(self.fingerprint, self.params)
        missing = sorted(set(expected) - set(self.tensors))
        extra = sorted(set(self.tensors) - set(expected))
        if missing:
            raise KvtoolError(f"artifact is missing tensor {', '.join(missing)}")
        if extra:
            raise KvtoolError(f"artifact has unexpected tensor {', '.join(extra)}")
        for name, (shape, dtype) in expected.items():
            tensor = self.tensors[name]
            if tuple(tensor.shape) != tuple(shape):
                raise KvtoolError(f"tensor {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
            if tensor.dtype != dtype:
                raise KvtoolError(f"tensor {name} has dtype {tensor.dtype}, expected {dtype}")
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise KvtoolError(f"tensor {name} holds NaN or inf values")

    def check_model(self, fingerprint: dict) -> None:
        """Refuse an artifact made for another model, naming the first difference."""
        for key in sorted(set(self.fingerprint) | set(fingerprint)):
            mine, theirs = self.fingerprint.get(key), fingerprint.get(key)
            if mine != theirs:
                if key == "kv_weights_sha256":
                    raise KvtoolError("artifact was made for another model: its K/V projection weights differ")
                raise KvtoolError(f"artifact was made for another model: {key} is {mine}, this model has {theirs}")

    def metadata(self) -> dict[str, str]:
        return {
            PREFIX + "format_version": str(FORMAT_VERSION),
            PREFIX + "method": self.method,
            PREFIX + "params": json.dumps(self.params, sort_keys=True),
            PREFIX + "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            PREFIX + "calibration": json.dumps(self.calibration, sort_keys=True),
            PREFIX + "tool_version": self.tool_version,
            PREFIX + "created": self.created,
            PREFIX + "checksum": tensor_checksum(self.tensors),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a temporary file in the same folder, then a rename; never a half-written artifact."""
        self.validate()
        self.created = self.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        path = Path(path)
        if path.is_dir():
            raise KvtoolError(f"output path {path} is a folder")
        if not path.parent.is_dir():
            raise KvtoolError(f"output folder {path.parent} does not exist")
        tensors = {name: t.detach().cpu().contiguous() for name, t in self.tensors.items()}
        payload = save_safetensors(tensors, metadata=self.metadata())
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over each tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _read_header(raw: bytes, path: Path) -> dict:
    if len(raw) < 8:
        raise KvtoolError(f"{path} is truncated or not a safetensors file ({len(raw)} bytes)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > MAX_HEADER_BYTES:
        raise KvtoolError(f"{path} has an oversized header ({header_len} bytes): not a kvtool artifact")
    if 8 + header_len > len(raw):
        raise KvtoolError(f"{path} is truncated: header needs {header_len} bytes, file has {len(raw) - 8}")
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KvtoolError(f"{path} has a corrupt header: not valid JSON") from None
    if not isinstance(header, dict):
        raise KvtoolError(f"{path} has a corrupt header")
    return header


def _json_field(metadata: dict, key: str, path: Path):
    try:
        value = json.loads(metadata[PREFIX + key])
    except KeyError:
        raise KvtoolError(f"{path} metadata lacks '{PREFIX + key}'") from None
    except json.JSONDecodeError:
        raise KvtoolError(f"{path} metadata '{PREFIX + key}' is not valid JSON") from None
    if not isinstance(value, dict):
        raise KvtoolError(f"{path} metadata '{PREFIX + key}' is not a JSON object")
    return value


def load_artifact(path: str | os.PathLike, fingerprint: dict | None = None) -> Artifact:
    """Read and validate an artifact: format version, method, parameters, checksum, tensors, and model if given."""
    path = Path(path)
    if not path.is_file():
        raise KvtoolError(f"artifact not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise KvtoolError(f"cannot read artifact {path}: {err.strerror}") from None
    header = _read_header(raw, path)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or PREFIX + "format_version" not in metadata:
        raise KvtoolError(f"{path} is not a kvtool artifact (no {PREFIX}format_version in its metadata)")
    version = metadata[PREFIX + "format_version"]
    if version != str(FORMAT_VERSION):
        raise KvtoolError(f"{path} has format version {version}; this kvtool reads version {FORMAT_VERSION}")
    try:
        tensors = load_safetensors(raw)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise KvtoolError(f"{path} is corrupt: {str(err).splitlines()[0]}") from None
    if tensor_checksum(tensors) != metadata.get(PREFIX + "checksum"):
        raise KvtoolError(f"{path} failed its checksum: the tensors were altered or damaged")
    method = metadata.get(PREFIX + "method", "")
    schema = schema_for(method)
    params = schema.stored_params(_json_field(metadata, "params", path))
    if schema.resolve_params(params) != params:
        raise KvtoolError(f"{path} parameters are incomplete for method '{method}'")
    artifact = Artifact(
        method=method,
        params=params,
        fingerprint=_json_field(metadata, "fingerprint", path),
        tensors=tensors,
        calibration=_json_field(metadata, "calibration", path),
        created=metadata.get(PREFIX + "created", ""),
        tool_version=metadata.get(PREFIX + "tool_version", ""),
    )
    artifact.validate()
    if fingerprint is not None:
        artifact.check_model(fingerprint)
    return artifact
