"""DistributedDataParallel helpers: ``torchrun --nproc_per_node=K -m sdsen train ...``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them and starts a process group (NCCL on CUDA, gloo otherwise).
Only rank 0 writes logs and checkpoints; every rank holds identical weights after each step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "broadcast_flag",
    "cleanup_distributed",
    "env_world_size",
    "init_distributed",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes
    ----------
    rank, local_rank, world_size : int
        Global rank, rank on this node, number of processes (1 when not distributed).
    backend : str or None
        ``'nccl'`` / ``'gloo'``, None when not distributed.
    started_here : bool
        Whether :func:`init_distributed` created the process group (and should destroy it).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    started_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes files)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group described by the ``torchrun`` environment variables.

    Does nothing (returns a single-process :class:`DistInfo`) when ``WORLD_SIZE`` is unset or 1.
    Reuses an already initialised default group.

    Parameters
    ----------
    device_type : str
        ``'cuda'`` selects NCCL (and sets the CUDA device to ``LOCAL_RANK``); anything else gloo.

    Returns
    -------
    DistInfo
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            rank=dist.get_rank(),
            local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
            world_size=dist.get_world_size(),
            backend=str(dist.get_backend()),
            started_here=False,
        )
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    backend = "nccl" if device_type == "cuda" and dist.is_nccl_available() else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, local_rank, world, backend, started_here=True)


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if info.started_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``t`` over all processes (identity when not distributed)."""
    if not info.distributed:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / info.world_size


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
