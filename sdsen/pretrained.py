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

from .models import ModelConfig, build_model
from .persist import CHECKPOINT_FORMAT, WEIGHTS_FORMAT, atomic_torch_save, read_payload

__all__ = [
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "cards_markdown",
    "initial_weights",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "model_card",
    "save_weights",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "sdsen"


def _cards(weights_dir: Path = WEIGHTS_DIR) -> dict[str, dict[str, Any]]:
    path = weights_dir / "cards.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def list_pretrained(weights_dir: Path = WEIGHTS_DIR, study: bool = False) -> list[str]:
    """Names of the shipped pretrained models, default first, then sorted.

    Parameters
    ----------
    weights_dir
        Folder of the weights and their ``cards.json``.
    study
        False: the models for users (each with the reason to pick it in its card's ``role``).
        True: the models trained for the notebooks' studies (their card says ``"study":
        true``), which only make sense beside each other.

    Examples
    --------
    >>> names = list_pretrained()
    >>> names == [] or names[0] == "sdsen"
    True
    >>> set(names).isdisjoint(list_pretrained(study=True))
    True
    """
    cards = _cards(weights_dir)
    names = sorted(p.stem for p in weights_dir.glob("*.pt")
                   if bool(cards.get(p.stem, {}).get("study")) == study)
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


def _fmt_metrics(m: dict[str, Any]) -> str:
    return (f"RGB {m['psnr_rgb']:.2f} dB / {m['ssim_rgb']:.3f}, "
            f"Y {m['psnr_y']:.2f} dB / {m['ssim_y']:.3f}")


def cards_markdown(cards: dict[str, dict[str, Any]]) -> str:
    """``sdsen/weights/README.md``: the model cards as markdown, user models before study ones.

    Every card gives its role, model, training data, recipe, steps, time, hardware, command and
    scores; what a card lacks is left out.

    Examples
    --------
    >>> card = {"role": "a test", "model_config": {"stages": 1}, "steps": 10,
    ...         "metrics": {"val": {"psnr_rgb": 20, "ssim_rgb": 0.5, "psnr_y": 21, "ssim_y": 0.6,
    ...                             "images": 3}}}
    >>> print(cards_markdown({"m": card}).splitlines()[-1])
    - val, 3 images: RGB 20.00 dB / 0.500, Y 21.00 dB / 0.600
    """
    order = sorted(cards, key=lambda n: (bool(cards[n].get("study")), n != DEFAULT_MODEL, n))
    intro = ("Written by `scripts/ship_run.py` (models trained with `sdsen train`) and "
             "`benchmarks/results.py report` (the study models of "
             "`scripts/train_pretrained.py`). Load with `sdsen.load_pretrained(name)`; "
             "`sdsen.list_pretrained()` lists the models for users, "
             "`sdsen.list_pretrained(study=True)` the study models.")
    lines = ["# Model cards of the shipped weights", "", intro, ""]
    for name in order:
        c = cards[name]
        lines += [f"## `{name}`" + (" (study)" if c.get("study") else ""), "", f"{c['role']}.",
                  ""]
        if c.get("model_config"):
            lines.append(f"- model: `{json.dumps(c['model_config'])}`")
        data = c.get("training_data")
        if data:
            text = data if isinstance(data, str) else "; ".join(
                f"{k}: {v}" for k, v in data.items() if v not in (None, False, 0, 0.0))
            lines.append(f"- training data: {text}")
        tc = c.get("train_config") or {}
        if tc:
            clip = tc.get("grad_clip")
            lines.append(
                f"- recipe: sum over stages of MSE on R, Adam lr {tc.get('lr')}, batch "
                f"{tc.get('batch_size')} of {tc.get('patch_size')}² patches, lr x{tc.get('gamma')} "
                f"at {tc.get('milestones')}, "
                + (f"gradient norm clipped to {clip}" if clip else "no gradient clipping")
                + (f", stage schedule {tc['stage_schedule']}" if tc.get("stage_schedule") else ""))
        if c.get("steps") is not None:
            planned = c.get("steps_planned")
            lines.append(f"- {c['steps']} steps" + (
                f" of {planned} planned" if planned and planned != c["steps"] else "")
                + (f"; {c['training_preset']}" if c.get("training_preset") else ""))
        init = c.get("init") or []
        for i, before in enumerate(init, 1):
            lines.append(
                f"- started from the weights of training {i} of {len(init)}: {before['steps']} "
                f"steps, batch {before['batch_size']} of {before['patch_size']}², Adam lr "
                f"{before['lr']}, lr x0.1 at {before['milestones']}, `{before['command']}`")
        if c.get("hardware"):
            minutes = (c.get("train_seconds") or 0) / 60
            earlier = sum(i.get("train_seconds") or 0 for i in init) / 60
            lines.append(f"- trained on {c['hardware']}, torch {c.get('torch')}, {c.get('date')}, "
                         f"{minutes:.0f} min of training"
                         + (f" ({earlier:.0f} min before it)" if init else ""))
        for key, label in (("command", "command"), ("command_as_run", "ran as")):
            if c.get(key):
                lines.append(f"- {label}: `{c[key]}`")
        for step, changed in c.get("config_changes") or []:
            lines.append(f"- changed when resumed at step {step}: " + ", ".join(
                f"{k} {old} -> {new}" for k, (old, new) in changed.items()))
        trend = c.get("validation")
        if trend:
            change = trend.get("tail_change")
            lines.append(
                f"- its own validation ({trend['what']}), last stage: Y {trend['value']:.2f} dB at "
                f"step {trend['step']} (best {trend['best']:.2f} at step {trend['best_step']})"
                + (f", {change:+.2f} dB over the last 20 % of steps" if change is not None
                   else ", too few validations in the last 20 % of steps for a slope"))
        if c.get("scope"):
            lines.append(f"- scope: {c['scope']}")
        for key, m in (c.get("metrics") or {}).items():
            lines.append(f"- {key}, {m['images']} images: {_fmt_metrics(m)}")
        lines.append("")
    return "\n".join(lines)


def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s config and float32 weights to ``path`` atomically (temp file + rename).

    ``model`` must have a ``config`` dataclass (every :mod:`sdsen.models` network does).
    """
    payload = {
        "format": WEIGHTS_FORMAT,
        "model_config": asdict(model.config),
        "state_dict": {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def load_weights(path: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """Build the model stored at ``path`` (written by :func:`save_weights`), in eval mode."""
    payload = read_payload(path, "weights file", fix=_weights_fix(Path(path)))
    if payload.get("format") != WEIGHTS_FORMAT:
        raise ValueError(
            f"{path} is not an sdsen weights file (format {WEIGHTS_FORMAT!r}); for a training "
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


def initial_weights(spec: str) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor], str]:
    """The weights a fine-tuning run starts from (``TrainConfig.init_weights``).

    Parameters
    ----------
    spec : str
        The name of shipped weights (:func:`sdsen.list_pretrained`), a weights file written by
        :func:`sdsen.pretrained.save_weights`, or a training checkpoint.

    Returns
    -------
    (model_config, state_dict, source)
        The stored model config (a dict, or None if the file has none), the float weights and
        the file they came from.
    """
    shipped = list_pretrained() + list_pretrained(study=True)
    path = WEIGHTS_DIR / f"{spec}.pt" if spec in shipped else Path(spec)
    if not path.is_file():
        raise FileNotFoundError(
            f"init_weights {spec!r} is neither shipped weights ({', '.join(shipped)}) nor an "
            "existing file; give a name from sdsen.list_pretrained() or a .pt path"
        )
    payload = read_payload(
        path,
        "init_weights file",
        fix="Fix: copy or download it again (shipped weights: reinstall sdsen), or pass another "
        "init_weights (CLI: --init-weights)",
    )
    fmt = payload.get("format")
    if fmt == CHECKPOINT_FORMAT:
        return payload.get("model_config"), payload["model"], str(path)
    if fmt == WEIGHTS_FORMAT:
        return payload["model_config"], payload["state_dict"], str(path)
    raise ValueError(
        f"init_weights file {path} is neither sdsen weights nor an sdsen training checkpoint "
        f"(format {fmt!r}); official SDSEN weights convert with sdsen.models.load_official"
    )
