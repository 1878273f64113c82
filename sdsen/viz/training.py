"""Training curves from a run folder's ``metrics.jsonl`` (written by :func:`sdsen.train.fit`).

``metrics.jsonl`` holds one JSON object per log event: ``{"event": "train", "step", "loss",
"loss_stages", "lr", "grad_norm_max", ...}`` every ``log_every`` steps (``grad_norm_max``: the
largest global gradient norm, before clipping, since the previous event) and ``{"event":
"val", "step", "psnr", "ssim", "psnr_y", "ssim_y", "images"}`` (one value per stage) at each
validation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ..train.logs import TensorBoardRecord

__all__ = [
    "model_cards_table",
    "plot_tensorboard_images",
    "plot_training_curves",
    "plot_validation_curve",
    "training_curves",
]


def training_curves(run: str | os.PathLike | Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Arrays of a run's logged training loss and validation scores.

    Parameters
    ----------
    run
        A run folder (its ``metrics.jsonl`` is read with :func:`sdsen.train.read_metrics`) or the
        list of log rows itself.

    Returns
    -------
    dict of numpy.ndarray
        ``step (S,)``, ``loss (S,)`` (sum over stages), ``loss_stages (S, T)``, ``lr (S,)``,
        ``grad_norm_max (S,)`` (NaN in logs written before it was recorded) of the ``train``
        events; ``val_step (V,)`` and ``psnr``, ``ssim``, ``psnr_y``, ``ssim_y``
        ``(V, T)`` of the ``val`` events (RGB and Y protocols, one column per stage). Rows are
        sorted by step; a step logged twice (a resumed run) keeps its last row.

    Examples
    --------
    >>> rows = [{"event": "train", "step": 10, "loss": 0.3, "loss_stages": [0.2, 0.1], "lr": 1e-3},
    ...         {"event": "val", "step": 10, "psnr": [20.0, 21.0], "ssim": [0.5, 0.6],
    ...          "psnr_y": [21.0, 22.0], "ssim_y": [0.6, 0.7]}]
    >>> c = training_curves(rows)
    >>> c["loss_stages"].shape, c["psnr_y"][:, -1].tolist()
    ((1, 2), [22.0])
    """
    if isinstance(run, (str, os.PathLike)):
        from ..train import read_metrics

        rows: Sequence[Mapping[str, Any]] = read_metrics(run)
    else:
        rows = run

    def last_per_step(kind: str) -> list[Mapping[str, Any]]:
        by_step = {int(r["step"]): r for r in rows if r.get("event") == kind}
        return [by_step[s] for s in sorted(by_step)]

    train, val = last_per_step("train"), last_per_step("val")
    t_max = max((len(r.get("loss_stages") or []) for r in train), default=0)

    def stages(r: Mapping[str, Any], key: str, width: int) -> list[float]:
        vals = [np.nan if v is None else float(v) for v in (r.get(key) or [])]
        return vals + [np.nan] * (width - len(vals))

    out = {
        "step": np.array([r["step"] for r in train], dtype=np.int64),
        "loss": np.array([r.get("loss", np.nan) for r in train], dtype=np.float64),
        "loss_stages": np.array([stages(r, "loss_stages", t_max) for r in train],
                                dtype=np.float64).reshape(len(train), t_max),
        "lr": np.array([r.get("lr", np.nan) for r in train], dtype=np.float64),
        "grad_norm_max": np.array([r.get("grad_norm_max", np.nan) for r in train],
                                  dtype=np.float64),
        "val_step": np.array([r["step"] for r in val], dtype=np.int64),
    }
    v_max = max((len(r.get("psnr") or []) for r in val), default=0)
    for key in ("psnr", "ssim", "psnr_y", "ssim_y"):
        out[key] = np.array([stages(r, key, v_max) for r in val],
                            dtype=np.float64).reshape(len(val), v_max)
    return out


def plot_training_curves(
    run: str | os.PathLike | Sequence[Mapping[str, Any]],
    *,
    marks: Sequence[int] = (),
    mark_label: str = "resumed here",
    title: str | None = None,
) -> Figure:
    """Three panels: training loss (total and per stage), validation PSNR, learning rate and
    gradient norm.

    Parameters
    ----------
    run
        Run folder or log rows (see :func:`training_curves`).
    marks
        Steps to mark with a vertical line (e.g. where a run was resumed).
    mark_label
        Legend label of the marks.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Left: the objective :math:`\\sum_t \\mathrm{MSE}(R_t, O - B)` and its per-stage terms
        (log scale). Middle: validation PSNR of the first and last stage in both protocols (RGB,
        Y). Right: the learning rate and, on a second axis, the largest gradient norm of each
        log interval (before clipping): spikes there are what gradient clipping cuts.
    """
    c = training_curves(run)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    ax = axes[0]
    n_stages = c["loss_stages"].shape[1]
    cmap = plt.get_cmap("viridis")
    for t in range(n_stages):
        ax.plot(c["step"], c["loss_stages"][:, t], lw=0.9, alpha=0.8,
                color=cmap(t / max(n_stages - 1, 1)), label=f"stage {t + 1}")
    ax.plot(c["step"], c["loss"], color="k", lw=1.8, label="total (sum)")
    ax.set(xlabel="step", ylabel="MSE on R", title="training loss")
    if c["step"].size and np.all(c["loss"][np.isfinite(c["loss"])] > 0):
        ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2 if n_stages > 4 else 1)

    ax = axes[1]
    if c["val_step"].size:
        for key, label, color in (("psnr", "RGB", "tab:blue"), ("psnr_y", "Y", "tab:orange")):
            vals = c[key]
            ax.plot(c["val_step"], vals[:, -1], "o-", color=color,
                    label=f"{label}, last stage")
            if vals.shape[1] > 1:
                ax.plot(c["val_step"], vals[:, 0], "o--", color=color, alpha=0.5, ms=3,
                        label=f"{label}, stage 1")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no validation logged", ha="center", va="center",
                transform=ax.transAxes)
    ax.set(xlabel="step", ylabel="PSNR (dB)", title="validation")

    ax = axes[2]
    ax.plot(c["step"], c["lr"], color="tab:green")
    ax.set(xlabel="step", title="schedule and gradient norm")
    ax.set_ylabel("learning rate", color="tab:green")
    if c["lr"].size and np.all(c["lr"] > 0):
        ax.set_yscale("log")
    norms = c["grad_norm_max"]
    if np.isfinite(norms).any():
        twin = ax.twinx()
        twin.plot(c["step"], norms, color="tab:purple", lw=0.9)
        twin.set_ylabel("max gradient norm per interval", color="tab:purple")
        if np.all(norms[np.isfinite(norms)] > 0):
            twin.set_yscale("log")

    for ax in axes:
        for i, s in enumerate(marks):
            ax.axvline(s, color="tab:red", ls=":", lw=1.2, label=mark_label if i == 0 else None)
    if marks:
        axes[2].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_validation_curve(
    run: str | os.PathLike | Sequence[Mapping[str, Any]],
    *,
    baseline: Mapping[str, float] | None = None,
    targets: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Validation Y PSNR and Y SSIM of the last stage scored, against the step.

    Parameters
    ----------
    run
        Run folder or log rows (see :func:`training_curves`).
    baseline
        Horizontal reference lines, e.g. ``{"rainy input": 23.3}`` for the PSNR panel; a key
        ending in ``" SSIM"`` goes to the SSIM panel.
    targets
        The same for targets (drawn dashed).
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels. Points are coloured by the number of stages scored, so a run trained with
        a stage schedule shows where it moved to more stages.
    """
    c = training_curves(run)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    n_stages = np.sum(np.isfinite(c["psnr_y"]), axis=1) if c["val_step"].size else np.array([])
    for ax, key, label in ((axes[0], "psnr_y", "Y PSNR (dB)"), (axes[1], "ssim_y", "Y SSIM")):
        if c["val_step"].size:
            last = np.array([row[np.isfinite(row)][-1] for row in c[key]])
            ax.plot(c["val_step"], last, color="0.6", lw=1, zorder=1)
            points = ax.scatter(c["val_step"], last, c=n_stages, cmap="viridis", s=18, zorder=2,
                                vmin=1, vmax=max(int(n_stages.max()), 2))
        ssim = key == "ssim_y"
        for lines, style in ((baseline or {}, ":"), (targets or {}, "--")):
            for name, value in lines.items():
                if name.endswith(" SSIM") == ssim:
                    ax.axhline(value, ls=style, color="tab:red" if style == "--" else "k", lw=1)
                    ax.annotate(name, (0.01, value), xycoords=("axes fraction", "data"),
                                va="bottom", fontsize=7)
        ax.set(xlabel="step", ylabel=label, title=f"validation, last stage scored: {label}")
    if c["val_step"].size:
        bar = fig.colorbar(points, ax=axes[1], label="stages scored")
        bar.set_ticks(np.unique(n_stages).tolist())
    if title:
        fig.suptitle(title)
    return fig


def model_cards_table(cards: Mapping[str, Mapping[str, Any] | None]) -> str:
    """Markdown table summarising model cards (:func:`sdsen.pretrained.model_card`).

    Parameters
    ----------
    cards
        ``{name: card}``; a ``None`` card (no ``cards.json`` entry) gets a "no card" row.

    Returns
    -------
    str
        Columns: model, role, steps, hardware, then the last-stage Y PSNR / SSIM of each score
        set the cards record (e.g. the Rain800 validation split), in order of first appearance.

    Examples
    --------
    >>> card = {"role": "default", "steps": 100, "hardware": "GPU",
    ...         "metrics": {"val": {"psnr_y": 30.0, "ssim_y": 0.9}}}
    >>> print(model_cards_table({"sdsen": card, "dsen": None}))
    | model | role | steps | hardware | val: Y PSNR / SSIM |
    |---|---|---|---|---|
    | `sdsen` | default | 100 | GPU | 30.00 / 0.900 |
    | `dsen` | no model card yet | – | – | – |
    """
    sets = list(dict.fromkeys(k for c in cards.values() if c for k in (c.get("metrics") or {})))
    lines = ["| model | role | steps | hardware | "
             + " | ".join(f"{s}: Y PSNR / SSIM" for s in sets) + " |",
             "|---|---|---|---|" + "---|" * len(sets)]
    for name, card in cards.items():
        if not card:
            lines.append(f"| `{name}` | no model card yet | – | – | " + "– | " * len(sets))
            lines[-1] = lines[-1].rstrip()
            continue
        metrics = card.get("metrics") or {}
        cells = [f"{metrics[s]['psnr_y']:.2f} / {metrics[s]['ssim_y']:.3f}" if s in metrics
                 else "–" for s in sets]
        steps = card.get("steps")
        # a fine-tuned model: the steps of each training it went through, oldest first
        earlier = [str(i.get("steps")) for i in card.get("init") or []]
        steps_text = "–" if steps is None else " + ".join([*earlier, str(steps)])
        if card.get("stopped_early"):
            steps_text += " (stopped early)"
        lines.append(f"| `{name}` | {card.get('role', '–')} | {steps_text} | "
                     f"{card.get('hardware', '–')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_tensorboard_images(
    record: TensorBoardRecord, tag: str = "train/rainy_derained_clean"
) -> Figure:
    """The first and the last image TensorBoard holds under ``tag``, one above the other.

    Parameters
    ----------
    record
        A :class:`sdsen.train.TensorBoardRecord` (:func:`sdsen.train.read_tensorboard`).
    tag
        Image tag; :func:`sdsen.train.fit` logs ``"train/rainy_derained_clean"``: rows of rainy
        patches, their derained estimates and the clean patches, every ``log_images_every``
        steps.

    Raises
    ------
    KeyError
        If the record has no image under ``tag`` (the tags it has are listed).
    """
    if tag not in record.images:
        raise KeyError(f"no image tag {tag!r} in the TensorBoard record; it has "
                       f"{sorted(record.images)} (TrainConfig.log_images_every=0 logs none)")
    shots = record.images[tag]
    shots = [shots[0], shots[-1]] if len(shots) > 1 else shots
    h, w = shots[0][1].shape[:2]
    fig, axes = plt.subplots(len(shots), 1, figsize=(7, 7 * h / w * len(shots) + 0.4 * len(shots)),
                             squeeze=False)
    for ax, (step, img) in zip(axes[:, 0], shots, strict=True):
        ax.imshow(img)
        rows = ": rows rainy, derained, clean" if tag == "train/rainy_derained_clean" else ""
        ax.set_title(f"{tag}, step {step}{rows}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig
