"""The ranks of a `torchrun`-launched calibration: where each rank computes, its process group, and one clear error.

`torchrun --nproc-per-node N kvtool calibrate ...` starts N copies of the same command; each reads RANK,
WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE from its environment. Without them (WORLD_SIZE unset or 1) everything
here is a no-op and calibration runs in one process.

A failure on any rank must end every rank with one error line and no artifact. The first rank to fail claims the
right to report through the rendezvous store (an atomic counter), prints its error and exits; later failures,
often just "peer closed the connection", exit quietly. Ranks that are still healthy are ended by torchrun, or by
their next collective failing against the missing peer. Rank 0 writes the artifact only after every rank reached
`wait_for_all_ranks`, so a rank that failed late still leaves no artifact.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as torch_dist

from kvtool.errors import KvtoolError

DEVICES = ("auto", "cpu", "cuda")
FAILURES_KEY = "kvtool/failed_ranks"


def launched_world_size() -> int:
    """How many ranks the launcher started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_gpus() -> list[int]:
    """The GPUs this rank may use: all of them in one process; under torchrun an equal, contiguous share per local
    rank (one each with as many ranks as GPUs; several each for `--device-map auto` with fewer ranks)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    per_rank = torch.cuda.device_count() // local_ranks
    if per_rank == 0:
        raise KvtoolError(f"{local_ranks} ranks on this node but only {torch.cuda.device_count()} GPUs")
    return list(range(local_rank * per_rank, (local_rank + 1) * per_rank))


def resolve_device(option: str) -> str:
    """`--device` (auto, cpu, cuda) as the device this rank computes on: 'cpu' or 'cuda:<its first GPU>'."""
    if option not in DEVICES:
        raise KvtoolError(f"--device must be one of {', '.join(DEVICES)}, got '{option}'")
    if option == "cpu" or (option == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        raise KvtoolError("--device cuda, but no CUDA device is visible to this process")
    return f"cuda:{rank_gpus()[0]}"


def rank_max_memory() -> dict | None:
    """accelerate's `max_memory` limiting a device map to this rank's GPUs and share of CPU memory (None, meaning
    every GPU and all memory, in one process)."""
    if launched_world_size() <= 1:
        return None
    import psutil  # accelerate's own dependency

    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    limits: dict = {gpu: torch.cuda.mem_get_info(gpu)[0] for gpu in rank_gpus()}
    limits["cpu"] = psutil.virtual_memory().available // local_ranks
    return limits


@contextmanager
def ranks(device_option: str) -> Iterator[str]:
    """Run the body on every rank, joined in a process group (NCCL on CUDA, gloo on the CPU); yields this rank's
    device. An exception on any rank becomes one error line (from the first rank that failed) and a non-zero exit
    on every rank; in one process the body runs as is."""
    if launched_world_size() <= 1:
        yield resolve_device(device_option)
        return
    store, rank, world_size = next(torch_dist.rendezvous("env://"))
    try:
        device = resolve_device(device_option)
        on_cuda = device.startswith("cuda")
        if on_cuda:
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if on_cuda else "gloo", store=store, rank=rank, world_size=world_size,
                                      device_id=torch.device(device) if on_cuda else None)
        if rank == 0:
            print(f"{world_size} ranks ({torch_dist.get_backend()}), rank 0 on {device}", file=sys.stderr)
        yield device
    except Exception as err:
        if not _first_to_fail(store):
            raise SystemExit(1) from None  # the first failure is being reported; this one is most likely its echo
        if isinstance(err, KvtoolError):
            raise KvtoolError(f"rank {rank}: {err}") from None
        raise
    torch_dist.destroy_process_group()


def _first_to_fail(store) -> bool:
    try:
        return store.add(FAILURES_KEY, 1) == 1
    except RuntimeError:  # the store went away with its host rank, which failed first and reported
        return False


def wait_for_all_ranks() -> None:
    """Return once every rank got here; a rank that failed never does, so the others never write an artifact."""
    if torch_dist.is_initialized():
        torch_dist.barrier()
