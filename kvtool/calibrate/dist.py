"""The few collectives calibrators use; each is the identity in a single process.

Under `torchrun`, calibration sequences are split across ranks (`shard`), and each method reduces what it
accumulated with these, so that N ranks produce the single-process artifact up to float reduction order.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def shard(count: int) -> list[int]:
    """The sequence indices this rank handles: every world_size-th one, starting at its rank."""
    return list(range(rank(), count, world_size()))


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Element-wise sum, min or max over ranks; every rank gets the result."""
    if not active():
        return tensor
    ops = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
    moved = tensor.to(_device()).contiguous()
    dist.all_reduce(moved, op=ops[op])
    return moved.to(tensor.device)


def gather_indexed(rows: dict[int, torch.Tensor]) -> list[torch.Tensor]:
    """Per-sequence tensors {sequence index: [n_i, ...]} from every rank, as one list in sequence-index order.

    Plain tensor collectives (sizes first, then padded data): nothing is pickled between ranks.
    """
    if not active():
        return [rows[i] for i in sorted(rows)]
    indices = sorted(rows)  # every rank has at least one sequence: `calibrate` checks samples >= world size
    header = torch.tensor([[i, rows[i].shape[0]] for i in indices], dtype=torch.long)
    local = torch.cat([rows[i] for i in indices])
    merged = {}
    for head, data in zip(_all_gather_padded(header), _all_gather_padded(local)):
        offset = 0
        for index, count in head.tolist():
            merged[index] = data[offset : offset + count]
            offset += count
    return [merged[i] for i in sorted(merged)]


def _all_gather_padded(tensor: torch.Tensor) -> list[torch.Tensor]:
    """all_gather of tensors whose first dimension differs between ranks."""
    size = torch.tensor([tensor.shape[0]], dtype=torch.long, device=_device())
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, *tensor.shape[1:], dtype=tensor.dtype, device=_device())
    padded[: tensor.shape[0]] = tensor.to(_device())
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return [part[: int(s.item())].cpu() for part, s in zip(parts, sizes)]

