"""Training checkpoints: atomic writes, ``weights_only`` loading, exact RNG capture.

A checkpoint is a dict of tensors and plain containers only, so it loads with
``torch.load(path, weights_only=True)`` (no arbitrary code runs on load)::

    {
        "format": "sdsen-checkpoint/1",
        "step": int,                    # optimiser steps done
        "model_config": {...},          # dataclasses.asdict(model.config)
        "train_config": {...},          # TrainConfig.to_dict()
        "model": state_dict,            # float weights, unwrapped from DDP / torch.compile
        "optimizer": state_dict,
        "scheduler": state_dict,        # MultiStepLR, milestones stored as a plain dict
        "rng": {"torch", "cuda", "numpy", "python"},
        "data_state": ... or None,      # state_dict() of an iterable batch source
        "sdsen_version": str,
    }
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..models import ModelConfig, build_model, equivariant_decoder_state
from ..models.utils import check_model_config, model_config_dict, unwrap_model
from ..persist import CHECKPOINT_FORMAT, atomic_torch_save, read_payload
from .logs import is_run_dir

__all__ = [
    "LATEST",
    "equivariant_decoder_payload",
    "get_rng_state",
    "load_checkpoint",
    "load_scheduler_state",
    "model_from_checkpoint",
    "save_checkpoint",
    "set_rng_state",
]

#: File name of the rolling checkpoint in a run folder.
LATEST = "latest.pt"


# --------------------------------------------------------------------------- RNG states
def get_rng_state() -> dict[str, Any]:
    """All global RNG states (torch, CUDA, NumPy, Python) as tensors and plain lists."""
    keys_name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(keys_name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(internal), "gauss_next": gauss_next},
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# --------------------------------------------------------------------------- save / load
def _scheduler_state(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    state = dict(scheduler.state_dict())
    for key, value in list(state.items()):
        if isinstance(value, collections.Counter):
            state[key] = {int(k): int(v) for k, v in value.items()}
    return state


def load_scheduler_state(scheduler: Any, state: dict[str, Any]) -> None:
    """Restore a scheduler state stored by :func:`save_checkpoint` (Counter milestones)."""
    scheduler.load_state_dict(state)
    if isinstance(getattr(scheduler, "milestones", None), dict):
        scheduler.milestones = collections.Counter(scheduler.milestones)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    step: int = 0,
    train_config: dict[str, Any] | None = None,
    data_state: Any = None,
    rng: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a training checkpoint atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``.pt``); parent folders are created.
    model : torch.nn.Module
        The model (DDP / compiled wrappers are unwrapped).
    optimizer, scheduler : optional
        Their ``state_dict()`` is stored.
    step : int
        Optimiser steps done.
    train_config : dict, optional
        ``TrainConfig.to_dict()``.
    data_state : optional
        ``state_dict()`` of the batch source (tensors / plain containers only).
    rng : dict, optional
        RNG states to store (default: :func:`get_rng_state` now).
    extra : dict, optional
        More entries (tensors / plain containers), e.g. ``{"scaler": GradScaler.state_dict()}``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    net = unwrap_model(model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "model_config": model_config_dict(net),
        "train_config": dict(train_config) if train_config is not None else None,
        "model": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": _scheduler_state(scheduler),
        "rng": rng if rng is not None else get_rng_state(),
        "data_state": data_state,
        "sdsen_version": __version__,
    }
    if extra:
        clash = set(extra) & set(payload)
        if clash:
            raise ValueError(f"extra checkpoint entries clash with reserved keys {sorted(clash)}")
        payload.update(extra)
    return atomic_torch_save(payload, path)


def equivariant_decoder_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of a model with ``decoder='official'`` rewritten for ``'equivariant'``.

    The weights and model config as :func:`sdsen.models.equivariant_decoder_state` makes them,
    and the optimiser's per-parameter state (Adam's moments) reshaped like its parameter, so a
    run resumes with the decoder switched and everything else as it was. ``payload`` is not
    changed.

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> model = SDSEN(channels=2, stages=2, blocks=1)
    >>> opt = torch.optim.Adam(model.parameters())
    >>> model(torch.rand(1, 3, 8, 8))[-1].sum().backward(); opt.step()
    >>> payload = {"model_config": model_config_dict(model), "model": model.state_dict(),
    ...            "optimizer": opt.state_dict()}
    >>> new = equivariant_decoder_payload(payload)
    >>> i = [name for name, _ in model.named_parameters()].index("dec.0.weight")
    >>> tuple(payload["optimizer"]["state"][i]["exp_avg"].shape)
    (2, 8, 5, 5)
    >>> new["model_config"]["decoder"], tuple(new["optimizer"]["state"][i]["exp_avg"].shape)
    ('equivariant', (2, 2, 4, 5, 5))
    """
    cfg, state = equivariant_decoder_state(payload["model"], ModelConfig(**payload["model_config"]))
    shapes = [p.shape for p in build_model(cfg).parameters()]  # the optimiser's index order
    optimizer = payload.get("optimizer")
    if optimizer is not None:
        optimizer = {**optimizer, "state": {
            i: {k: v.reshape(shapes[i]) if torch.is_tensor(v) and v.dim() > 0 else v
                for k, v in s.items()}
            for i, s in optimizer["state"].items()}}
    return {**payload, "model_config": dataclasses.asdict(cfg), "model": state,
            "optimizer": optimizer}


def _step_number(path: Path) -> int:
    """``N`` of a snapshot ``step_N.pt`` (-1 for another name)."""
    number = path.stem.removeprefix("step_")
    return int(number) if number.isdigit() else -1


def _checkpoint_fix(path: str | os.PathLike) -> str:
    """What to do about an unreadable checkpoint: for a run's ``latest.pt``, the snapshots.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint that could not be read.

    Returns
    -------
    str
        ``"Fix: ..."``: restore ``latest.pt`` from the run's newest ``step_N.pt`` snapshots
        (named), or start over (``sdsen clean`` / a new ``--run-dir``); for another file, pass
        another checkpoint.
    """
    path = Path(path)
    run = path.parent
    if path.name != LATEST or not is_run_dir(run):
        return "Fix: pass another checkpoint"
    restart = f"start over with `sdsen clean {run}` or a new --run-dir"
    snapshots = sorted(run.glob("step_*.pt"), key=_step_number)
    if not snapshots:
        return f"Fix: the run has no step_*.pt snapshot to restore it from; {restart}"
    older = f" and {len(snapshots) - 3} older" if len(snapshots) > 3 else ""
    names = ", ".join(p.name for p in reversed(snapshots[-3:]))
    return (
        f"Fix: restore it from a snapshot of the run ({names}{older}), e.g. "
        f"`cp {snapshots[-1]} {path}`; or {restart}"
    )


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    map_location: str | torch.device = "cpu",
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and restore what is given.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_checkpoint`.
    model : torch.nn.Module, optional
        Receives the weights, after its config is checked against the stored one
        (:class:`ConfigMismatchError` names both on a mismatch).
    optimizer, scheduler : optional
        Receive their stored states.
    map_location : str or torch.device
        Where tensors are loaded.
    restore_rng : bool
        Also restore the global RNG states.

    Returns
    -------
    dict
        The checkpoint payload.
    """
    payload = read_payload(path, "checkpoint", map_location, fix=_checkpoint_fix(path))
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not an sdsen training checkpoint (format {CHECKPOINT_FORMAT!r}); "
            "for shipped weights use sdsen.pretrained.load_weights, for the official SDSEN "
            "weights sdsen.models.load_official"
        )
    if model is not None:
        net = unwrap_model(model)
        check_model_config(payload.get("model_config"), net, source=str(path))
        net.load_state_dict(payload["model"])
    if optimizer is not None and payload.get("optimizer") is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload.get("scheduler") is not None:
        load_scheduler_state(scheduler, payload["scheduler"])
    if restore_rng and payload.get("rng") is not None:
        set_rng_state(payload["rng"])
    return payload


def model_from_checkpoint(
    path: str | os.PathLike, device: str | torch.device | None = None
) -> nn.Module:
    """Build the model stored in a training checkpoint, load its weights, eval mode.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint written by :func:`save_checkpoint` (e.g. ``runs/x/latest.pt``).
    device : str or torch.device, optional
        Where to put the model (default CPU).

    Returns
    -------
    torch.nn.Module
    """
    payload = load_checkpoint(path)
    cfg = payload.get("model_config")
    if cfg is None:
        raise ValueError(f"checkpoint {path} holds no model config; build the model yourself")
    model = build_model(ModelConfig(**cfg))
    model.load_state_dict(payload["model"])
    if device is not None:
        model.to(device)
    return model.eval()
