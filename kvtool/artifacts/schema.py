"""What a valid artifact of each method holds: its parameters and its tensors' shapes and dtypes.

Each method registers one `Schema`; writing and loading an artifact both check against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from kvtool.errors import KvtoolError


@dataclass(frozen=True)
class Param:
    """One method parameter: its type, default and allowed values."""

    kind: type
    default: Any
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    help: str = ""
    added_later: bool = False  # artifacts written before it existed lack it and mean its default

    def check(self, name: str, value: Any) -> Any:
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) != (self.kind is bool) or not isinstance(value, self.kind):
            raise KvtoolError(f"parameter {name}={value!r} must be of type {self.kind.__name__}")
        if self.choices is not None and value not in self.choices:
            raise KvtoolError(f"parameter {name}={value} must be one of {', '.join(map(str, self.choices))}")
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            raise KvtoolError(f"parameter {name}={value} is out of range [{self.min}, {self.max}]")
        return value


# tensors(fingerprint, params) -> {name: (shape, dtype)}; the fingerprint gives num_layers, num_kv_heads, head_dim
TensorShapes = Callable[[dict, dict], dict[str, tuple[tuple[int, ...], torch.dtype]]]


@dataclass(frozen=True)
class Schema:
    method: str
    summary: str
    params: dict[str, Param]
    tensors: TensorShapes = field(default=lambda fingerprint, params: {})
    check: Callable[[dict], None] = field(default=lambda params: None)  # rules across parameters
    operating_points: tuple[dict, ...] = ()  # the published settings `kvtool report` evaluates, as param overrides
    describe: Callable[[Any], list[str]] | None = None  # extra `kvtool inspect` lines for an artifact of this method

    def stored_params(self, stored: dict) -> dict:
        """An artifact's parameters, with the defaults of parameters added after it was written."""
        return {**{name: spec.default for name, spec in self.params.items() if spec.added_later}, **stored}

    def resolve_params(self, given: dict) -> dict:
        """Defaults filled in, every value checked; unknown names refused."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise KvtoolError(f"method '{self.method}' has no parameter {', '.join(unknown)}")
        params = {name: spec.check(name, given.get(name, spec.default)) for name, spec in self.params.items()}
        self.check(params)
        return params


SCHEMAS: dict[str, Schema] = {}


def register_schema(schema: Schema) -> Schema:
    SCHEMAS[schema.method] = schema
    return schema


def schema_for(method: str) -> Schema:
    from kvtool.artifacts import schemas  # noqa: F401  (fills SCHEMAS)

    if method not in SCHEMAS:
        raise KvtoolError(f"unknown method '{method}'; known methods: {', '.join(sorted(SCHEMAS))}")
    return SCHEMAS[method]
