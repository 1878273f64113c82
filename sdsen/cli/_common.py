"""Helpers shared by the ``sdsen`` subcommands: errors, ``k=v`` parsing, model loading."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["CLIError", "add_model_source", "load_model_from_args", "parse_kv", "resolve_cli_device"]


class CLIError(Exception):
    """An error reported to the user as one line, without a traceback."""


def parse_kv(items: list[str] | None, what: str = "--model-config") -> dict[str, Any]:
    """Parse ``['channels=4', 'se=false', 'group=p4m']`` into a dict (values JSON when possible).

    Examples
    --------
    >>> parse_kv(["channels=4", "se=false", "group=p4m", "z2_channels=null"])
    {'channels': 4, 'se': False, 'group': 'p4m', 'z2_channels': None}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"{what} expects KEY=VALUE items, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def add_model_source(p: argparse.ArgumentParser) -> None:
    """``--weights NAME`` / ``--checkpoint PATH`` (mutually exclusive)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--weights",
        metavar="NAME",
        help="shipped pretrained model (see sdsen.pretrained.list_pretrained) or a weights .pt "
        "file (default: the shipped 'sdsen')",
    )
    g.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="training checkpoint written by `sdsen train` (e.g. runs/x/latest.pt) or a run folder",
    )


def resolve_cli_device(spec: str | None) -> Any:
    """A ``torch.device`` for ``--device`` (auto: CUDA, MPS, CPU)."""
    from ..train import resolve_device

    try:
        return resolve_device(spec or "auto")
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _no_weights_message(name: str) -> str:
    from ..pretrained import list_pretrained

    shipped = list_pretrained()
    if shipped:
        study = list_pretrained(study=True)
        return (f"unknown pretrained model {name!r}; shipped: {', '.join(shipped)}"
                + (f" (and, for the notebooks' studies, {', '.join(study)})" if study else ""))
    return (
        f"no pretrained weights are shipped with this installation (sdsen/weights/{name}.pt is "
        "missing). Train a model first, e.g. `sdsen train --preset quick --data synthetic "
        "--run-dir runs/quick`, then pass --checkpoint runs/quick/latest.pt"
    )


def load_model_from_args(args: argparse.Namespace, device: Any) -> tuple[Any, str]:
    """The model chosen by ``--weights`` / ``--checkpoint`` and a label describing it."""
    from .. import pretrained  # the module, so that tests can patch its functions
    from ..train import LATEST, model_from_checkpoint

    if getattr(args, "checkpoint", None):
        path = Path(args.checkpoint)
        if path.is_dir():
            path = path / LATEST
        if not path.is_file():
            raise CLIError(f"checkpoint {path} does not exist")
        try:
            return model_from_checkpoint(path, device), str(path)
        except ValueError as exc:
            if "not an sdsen training checkpoint" not in str(exc):
                raise CLIError(str(exc)) from None
            try:  # also accept a shipped-weights file
                return pretrained.load_weights(path, device), str(path)
            except ValueError:
                raise CLIError(str(exc)) from None
    name = getattr(args, "weights", None) or pretrained.DEFAULT_MODEL
    if name.endswith((".pt", ".pth")) or os.sep in name:
        if not Path(name).is_file():
            raise CLIError(f"weights file {name} does not exist")
        try:
            return pretrained.load_weights(name, device), name
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    if name not in pretrained.list_pretrained() + pretrained.list_pretrained(study=True):
        raise CLIError(_no_weights_message(name))
    return pretrained.load_pretrained(name, device), f"pretrained {name!r}"
