"""A growable tensor along dim 2 (the token axis of packed tensors), appended in place, also from CUDA graphs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from kvtool.runtime.graphs import GraphStep


class Buffer:
    """A growable tensor along dim 2 with cheap appends and front drops (capacity grows by 25%, at least `slack`
    rows).

    `on_host`: held in CPU memory whatever the device of the appended rows (pinned where CUDA is present, so that
    copies to the GPU are fast)."""

    def __init__(self, on_host: bool = False, slack: int = 256) -> None:
        self.data: torch.Tensor | None = None
        self.begin = 0
        self.end = 0
        self.on_host = on_host
        self.slack = slack

    @classmethod
    def of(cls, x: torch.Tensor) -> "Buffer":
        """A buffer holding exactly `x` (no copy)."""
        buffer = cls()
        buffer.data, buffer.end = x, x.shape[2]
        return buffer

    def view(self) -> torch.Tensor:
        return self.data[:, :, self.begin : self.end]

    @property
    def rows(self) -> int:
        return self.end - self.begin

    def _empty(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        # whole multiples of 16 rows: strides keep their divisibility by 16 as buffers grow, which Triton specializes
        # the decode kernel on (a new compile inside a decode step)
        shape = (*x.shape[:2], -(-rows // 16) * 16, *x.shape[3:])
        if self.on_host:
            return torch.empty(shape, dtype=x.dtype, pin_memory=torch.cuda.is_available())
        return x.new_empty(shape)

    def make_room(self, like: torch.Tensor, rows: int, capacity: int = 0) -> None:
        """Capacity for `rows` more rows shaped like `like` without moving (a CUDA graph replays writes in place)."""
        if self.data is None:
            self.data = self._empty(like, max(rows, self.slack, capacity))
        elif self.end + rows > self.data.shape[2]:
            # grow from the live rows, not the old capacity: a windowed store that drops its front keeps its size
            self._move_live_rows(like, rows, capacity)

    def shrink(self) -> None:
        """Reallocate to the live rows and the room a regrowth would give them, where it holds over twice that."""
        if self.data is not None and self.data.shape[2] > 2 * (self.rows + self._spare(self.rows)):
            self._move_live_rows(self.data, 0)

    def _spare(self, live: int) -> int:
        return max(live // 4, self.slack)

    def _move_live_rows(self, like: torch.Tensor, rows: int, capacity: int = 0) -> None:
        """Reallocate to the live rows, `rows` more and the spare room a growth leaves (`capacity` rows at least)."""
        live = self.view()
        moved = self._empty(like, max(live.shape[2] + rows + self._spare(live.shape[2]), capacity))
        moved[:, :, : live.shape[2]] = live
        self.data, self.begin, self.end = moved, 0, live.shape[2]

    def make_room_for_tokens(self, tokens: int, stored: int) -> None:
        """Room for `tokens` more tokens at the rows per token that the `stored` tokens held take."""
        self.make_room(self.data, -(-tokens * self.rows // stored))

    def append(self, x: torch.Tensor, capacity: int = 0, graph: "GraphStep | None" = None) -> None:
        """Append rows along dim 2; `capacity` (rows) preallocates for what is still to come (`reserve`). While a
        CUDA graph is captured, the rows go where the replay's step count puts them."""
        self.make_room(x, x.shape[2], capacity)
        assert graph is None or self.end + x.shape[2] * graph.span <= self.data.shape[2], "room made before capture"
        if graph is None:
            self.data[:, :, self.end : self.end + x.shape[2]] = x
        else:
            self.data.index_copy_(2, graph.rows(self.end, x.shape[2]), x)
        self.end += x.shape[2]

    def drop_front(self, rows: int) -> None:
        self.begin += rows

    def nbytes(self) -> int:
        return 0 if self.data is None else self.view().numel() * self.data.element_size()
