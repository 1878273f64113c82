"""Model utilities: unwrap DDP / ``torch.compile`` wrappers, read and compare model configs."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from torch import nn

__all__ = [
    "ConfigMismatchError",
    "check_model_config",
    "eval_mode",
    "model_config_dict",
    "unwrap_model",
]


class ConfigMismatchError(ValueError):
    """A checkpoint was written for a different architecture than the model given."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside ``DistributedDataParallel`` and/or ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def model_config_dict(model: nn.Module) -> dict[str, Any] | None:
    """``dataclasses.asdict(model.config)``, or None for a model without a config dataclass."""
    cfg = getattr(unwrap_model(model), "config", None)
    if cfg is None:
        return None
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    if isinstance(cfg, dict):
        return dict(cfg)
    return None


def check_model_config(saved: dict[str, Any] | None, model: nn.Module, source: str = "") -> None:
    """Raise :class:`ConfigMismatchError` naming both configs if they differ.

    Parameters
    ----------
    saved : dict or None
        Model config stored in a checkpoint.
    model : torch.nn.Module
        The model about to receive the weights.
    source : str
        Where ``saved`` comes from (for the message).
    """
    current = model_config_dict(model)
    if saved is None or current is None or saved == current:
        return
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    details = ", ".join(f"{k}: checkpoint={saved.get(k)!r} model={current.get(k)!r}" for k in diff)
    raise ConfigMismatchError(
        f"checkpoint {source} was written for a different architecture.\n"
        f"  checkpoint model config: {saved}\n"
        f"  current model config:    {current}\n"
        f"  differences: {details}"
    )


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; its training flag is restored after it.

    Examples
    --------
    >>> net = nn.Dropout().train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
