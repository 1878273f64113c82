"""Pretrained weights shipped inside the package (``sdsen/weights/``).

Each model ``NAME`` is a file ``sdsen/weights/NAME.pt`` holding only tensors and plain
containers (loadable with ``torch.load(weights_only=True)``)::

    {"format": "sdsen-weights/1", "model_config": {...}, "state_dict": {...}}

and an entry in ``sdsen/weights/cards.json``: its model card (training data and parameters,
model config, steps, wall time and hardware, the exact command, final metrics in both
protocols). ``sdsen/weights/README.md`` renders the cards for people.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "model_card",
    "save_weights",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "sdsen"
_FORMAT = "sdsen-weights/1"


def _cards(weights_dir: Path = WEIGHTS_DIR) -> dict[str, dict[str, Any]]:
    path = weights_dir / "cards.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def list_pretrained(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the shipped pretrained models, default first, then sorted.

    Examples
    --------
    >>> names = list_pretrained()
    >>> names == [] or names[0] == "sdsen"
    True
    """
    names = sorted(p.stem for p in weights_dir.glob("*.pt"))
    if DEFAULT_MODEL in names:
        names.remove(DEFAULT_MODEL)
        names.insert(0, DEFAULT_MODEL)
    return names


def model_card(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict[str, Any]:
    """The model card of ``name`` (a dict; see ``sdsen/weights/README.md``)."""
    cards = _cards(weights_dir)
    if name not in cards:
        raise KeyError(f"no model card for {name!r}; shipped models: {list_pretrained(weights_dir)}")
    return cards[name]


def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s config and float32 weights to ``path`` atomically (temp file + rename).

    ``model`` must have a ``config`` dataclass (every :mod:`sdsen.models` network does).
    """
    from .train.checkpoint import atomic_torch_save

    payload = {
        "format": _FORMAT,
        "model_config": asdict(model.config),
        "state_dict": {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def load_weights(path: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """Build the model stored at ``path`` (written by :func:`save_weights`), in eval mode."""
    from .models import ModelConfig, build_model
    from .train.checkpoint import read_payload

    payload = read_payload(path, "weights file", fix=_weights_fix(Path(path)))
    if payload.get("format") != _FORMAT:
        raise ValueError(
            f"{path} is not an sdsen weights file (format {_FORMAT!r}); for a training "
            "checkpoint use sdsen.train.model_from_checkpoint, for official SDSEN weights "
            "sdsen.models.load_official"
        )
    model = build_model(ModelConfig(**payload["model_config"]))
    model.load_state_dict(payload["state_dict"])
    if device is not None:
        model.to(device)
    return model.eval()


def _weights_fix(path: Path) -> str:
    """What to do about an unreadable weights file: shipped ones come back with sdsen."""
    if path.resolve().parent == WEIGHTS_DIR:
        return "Fix: reinstall sdsen to restore its shipped weights, or use other weights"
    return "Fix: copy or download the file again, or pass another weights file"


def load_pretrained(name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> nn.Module:
    """Load the shipped model ``name`` in eval mode.

    Parameters
    ----------
    name
        One of :func:`list_pretrained` (``"sdsen"`` is the default used by ``sdsen derain``).
    device
        Where to put the model (default: CPU).

    Returns
    -------
    torch.nn.Module
        The network: ``model(x)`` maps ``(B, 3, H, W)`` in [0, 1] to the per-stage rain layers.
    """
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.exists():
        available = list_pretrained()
        hint = f"available: {', '.join(available)}" if available else "no weights are shipped"
        raise ValueError(f"unknown pretrained model {name!r} ({hint})")
    return load_weights(path, device)
