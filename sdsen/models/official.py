"""Weights of the official SDSEN / DSEN code (prismformore/SDSEN): load and export.

The official networks are p4 models with ``channel=10, depth=7 (4 blocks), 5x5, use_se=True``
and these state_dict keys (SDSEN, ``C`` channels, ``k`` kernel)::

    pre_layer.conv0.{weight (C, 3, 1, k, k), bias (C,)}
    re_layer.{i}.{weight (C, 2C, 4, k, k), bias (C,)}            # (C, C, 4, k, k) for DSEN
    connect_layers.{i}.conv0.{weight (C, C, 4, k, k), bias (C,)}  # SDSEN only
    dec.0.{weight (C, 4C, k, k), bias}   dec.1.fc.0.{weight (C//2, C), bias}
    dec.1.fc.2.{weight (C, C//2), bias}  dec.3.{weight (3, C, 1, 1), bias (3,)}

Our modules carry the same names, so the official state_dict loads as is. The official code
feeds OpenCV BGR images; ``channel_order='rgb'`` returns a model that takes and returns RGB
(it flips channels in and out, ``ModelConfig.flip_channels``), ``'bgr'`` one that behaves
exactly like the official forward.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from .config import ModelConfig
from .networks import _DerainNet, build_model

__all__ = ["export_official", "load_official", "official_config"]


def _read_source(source: Any) -> dict[str, torch.Tensor]:
    if isinstance(source, (str, os.PathLike)):
        source = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
    if not isinstance(source, Mapping):
        raise ValueError(  # noqa: TRY004 - one error type for every bad source
            f"expected a path, a checkpoint dict {{'net': ...}} or a state_dict, "
            f"got {type(source).__name__}"
        )
    if "net" in source and isinstance(source["net"], Mapping):
        source = source["net"]
    sd = dict(source)
    if sd and all(k.startswith("module.") for k in sd):  # saved from nn.DataParallel
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"state_dict entries that are not tensors: {bad}")
    return sd


def official_config(
    state_dict: Mapping[str, torch.Tensor], arch: str | None = None, stages: int = 8
) -> ModelConfig:
    """Infer the :class:`ModelConfig` of an official state_dict from its keys and shapes.

    Parameters
    ----------
    state_dict
        Official key names (module docstring).
    arch
        ``'SDSEN'``, ``'DSEN'`` or ``None`` (SDSEN when ``connect_layers`` keys are present).
    stages
        Stages of SDSEN (not stored in the weights; official: 8).

    Falls back to the official defaults where a shape is unreadable; the caller then reports
    every key that differs.
    """
    if arch is None:
        arch = "sdsen" if any(k.startswith("connect_layers.") for k in state_dict) else "dsen"
    arch = arch.lower()
    if arch not in ("sdsen", "dsen"):
        raise ValueError(f"arch must be 'SDSEN' or 'DSEN', got {arch!r}")
    channels, kernel = 10, 5
    w = state_dict.get("pre_layer.conv0.weight")
    if isinstance(w, torch.Tensor) and w.dim() == 5 and w.shape[-1] == w.shape[-2]:
        channels, kernel = int(w.shape[0]), int(w.shape[-1])
    def unbroken_run(pattern: str) -> int:
        """How many of the indices 0, 1, 2, ... the keys matching ``pattern`` have in a row."""
        idx = {int(m.group(1)) for k in state_dict if (m := re.match(pattern, k))}
        n = 0
        while n in idx:
            n += 1
        return n

    # the longer unbroken run of block indices: a stray re_layer.7 is then an unexpected key
    # (not blocks 4-6 missing), and a missing re_layer.2 a missing key (SDSEN's links still
    # count the blocks)
    blocks = max(unbroken_run(r"re_layer\.(\d+)\."), unbroken_run(r"connect_layers\.(\d+)\.")) or 4
    se = any(k.startswith("dec.1.") for k in state_dict)
    if kernel % 2 == 0:
        kernel = 5
    return ModelConfig(
        channels=channels,
        stages=stages if arch == "sdsen" else 1,
        blocks=blocks,
        kernel_size=kernel,
        group="p4",
        se=se,
        decoder="official",
        links=arch == "sdsen",
        arch=arch,
    )


def _compare(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> list[str]:
    problems = [
        f"missing key {k!r} (expected shape {tuple(v.shape)})"
        for k, v in expected.items()
        if k not in got
    ]
    problems += [
        f"unexpected key {k!r} (shape {tuple(v.shape)})"
        for k, v in got.items()
        if k not in expected
    ]
    problems += [
        f"wrong shape for {k!r}: expected {tuple(v.shape)}, got {tuple(got[k].shape)}"
        for k, v in expected.items()
        if k in got and tuple(got[k].shape) != tuple(v.shape)
    ]
    return problems


def load_official(
    source: Any, arch: str | None = "SDSEN", channel_order: str = "rgb", stages: int = 8
) -> _DerainNet:
    """Build a model from weights of the official SDSEN / DSEN code, in eval mode.

    Parameters
    ----------
    source
        A path to a file saved by ``torch.save`` (read with ``weights_only=True``), an official
        training checkpoint ``{'net': state_dict, 'clock': step, 'opt': ...}`` or a bare
        state_dict with the official key names.
    arch
        ``'SDSEN'`` (default), ``'DSEN'`` or ``None`` to infer from the keys.
    channel_order
        ``'rgb'``: the model takes and returns RGB (channels flipped in and out around the
        BGR weights). ``'bgr'``: exactly the official forward, BGR in and out.
    stages
        Stages of SDSEN (not stored in the weights; official: 8).

    Returns
    -------
    SDSEN or DSEN
        Config inferred from the shapes (channels, kernel, blocks, SE), ``group='p4'``,
        ``decoder='official'``.

    Raises
    ------
    ValueError
        If the state_dict does not match the inferred configuration; the message lists every
        missing and unexpected key and every shape that differs (expected vs got).

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> sd = export_official(SDSEN(channels=2, stages=2))
    >>> load_official(sd, stages=2, channel_order="bgr").config.channels
    2
    """
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    sd = _read_source(source)
    cfg = official_config(sd, arch, stages)
    cfg.flip_channels = channel_order == "rgb"
    model = build_model(cfg)
    problems = _compare(model.state_dict(), sd)
    if problems:
        keys_say = official_config(sd, None, stages).arch
        hint = (
            f"\nthe keys look like {keys_say.upper()} weights: pass arch={keys_say.upper()!r} "
            f"(or arch=None to infer it)"
            if keys_say != cfg.arch
            else ""
        )
        raise ValueError(
            f"the state_dict does not match the official {cfg.arch.upper()} (inferred channels="
            f"{cfg.channels}, kernel_size={cfg.kernel_size}, blocks={cfg.blocks}, se={cfg.se}):\n  "
            + "\n  ".join(problems)
            + hint
        )
    model.load_state_dict(sd, strict=True)
    return model.eval()


def export_official(model: _DerainNet, channel_order: str | None = None) -> dict[str, torch.Tensor]:
    """The model's weights as an official state_dict (a copy, on the CPU).

    Parameters
    ----------
    model
        A p4 SDSEN (with links) or DSEN with ``decoder='official'``: the architectures the
        official code defines.
    channel_order
        ``None``: the weights as they are, the exact inverse of :func:`load_official` with the
        order the model was loaded with (``load_official(export_official(m), channel_order=...)``
        rebuilds ``m``). ``'bgr'``: weights for the official code fed BGR images (the first
        layer's input channels and the last layer's outputs are reversed when the model takes
        RGB without flipping). ``'rgb'``: weights for RGB images.

    Examples
    --------
    >>> from sdsen.models import DSEN
    >>> sd = export_official(DSEN(channels=2))
    >>> tuple(sd["re_layer.0.weight"].shape)
    (2, 2, 4, 5, 5)
    """
    cfg = model.config
    reasons = []
    if cfg.group != "p4":
        reasons.append(f"group={cfg.group!r} (official: 'p4')")
    if cfg.decoder != "official":
        reasons.append(f"decoder={cfg.decoder!r} (official: 'official')")
    if cfg.arch == "sdsen" and not cfg.links:
        reasons.append("links=False (official SDSEN has links)")
    if abs(cfg.negative_slope - 0.2) > 1e-12:
        reasons.append(f"negative_slope={cfg.negative_slope} (official: 0.2)")
    if reasons:
        raise ValueError("the official code cannot represent this model: " + ", ".join(reasons))
    if channel_order not in (None, "rgb", "bgr"):
        raise ValueError(f"channel_order must be None, 'rgb' or 'bgr', got {channel_order!r}")
    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    # the weights see BGR when the model flips its RGB input, RGB otherwise
    weights_order = "bgr" if cfg.flip_channels else "rgb"
    if channel_order is not None and channel_order != weights_order:
        sd["pre_layer.conv0.weight"] = sd["pre_layer.conv0.weight"].flip(1).contiguous()
        sd["dec.3.weight"] = sd["dec.3.weight"].flip(0).contiguous()
        sd["dec.3.bias"] = sd["dec.3.bias"].flip(0).contiguous()
    return sd
