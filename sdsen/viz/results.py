"""Result figures: per-stage grids and curves, where a stage helps or hurts, the tilted-rain sweep.

Scores come as :class:`sdsen.evaluate.EvalResult` objects or their ``rows``; the numbers behind
the plots (means, gains, tables) are computed by :mod:`sdsen.analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..analysis import stage_change, stage_means, sweep_curve
from ..metrics import psnr, quantize_8bit
from .images import rain_display, to_display

__all__ = [
    "plot_angle_sweep",
    "plot_before_after",
    "plot_stage_change",
    "plot_stage_curves",
    "plot_stage_grid",
]

def _psnr(estimate: torch.Tensor, clean: torch.Tensor, protocol: str) -> float:
    return float(psnr(quantize_8bit(estimate.float().cpu()), clean.float().cpu(), protocol))


# ------------------------------------------------------------------------------ stages
def plot_stage_grid(
    rainy: torch.Tensor,
    clean: torch.Tensor,
    rains: Sequence[torch.Tensor],
    *,
    protocol: str = "y",
    title: str | None = None,
    panel_size: float = 1.6,
) -> Figure:
    """The self-refinement of one image: estimates and rain layers after every stage.

    Parameters
    ----------
    rainy, clean
        ``O`` and ``B``, each ``(3, H, W)`` (or ``(1, 3, H, W)``) in ``[0, 1]``.
    rains
        The model's per-stage rain layers ``[R_1, ..., R_T]``, each ``(3, H, W)`` or
        ``(1, 3, H, W)`` (the list ``model(rainy[None])`` returns).
    protocol
        PSNR protocol of the panel titles (``'rgb'`` or ``'y'``), on 8-bit outputs.
    title
        Figure title.
    panel_size
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Top row: rainy ``O`` | ``O - R_t`` for ``t = 1 .. T`` | clean ``B``, each titled with its
        PSNR against ``B``. Bottom row: the predicted rain layers ``R_t`` and the true
        ``R = O - B``, all brightened by the same gain.
    """
    rainy = rainy[0] if rainy.dim() == 4 else rainy
    clean = clean[0] if clean.dim() == 4 else clean
    rains = [r[0] if r.dim() == 4 else r for r in rains]
    rainy, clean = rainy.detach().float().cpu(), clean.detach().float().cpu()
    rains = [r.detach().float().cpu() for r in rains]
    true_rain = rainy - clean
    gain = 1.0 / max(float(true_rain.abs().flatten().quantile(0.995)), 1e-3)
    n = len(rains) + 2
    h, w = rainy.shape[-2:]
    fig, axes = plt.subplots(2, n, figsize=(panel_size * n, panel_size * 2 * h / w + 0.6),
                             squeeze=False, layout="constrained")
    label = protocol.upper() if protocol == "rgb" else "Y"
    panels = [("rainy O", rainy)] + [(f"stage {t + 1}", rainy - r) for t, r in enumerate(rains)]
    panels.append(("clean B", clean))
    for ax, (name, img) in zip(axes[0], panels):
        ax.imshow(to_display(img))
        if name == "clean B":
            ax.set_title(name, fontsize=8)
        else:
            ax.set_title(f"{name}\n{_psnr(img.clamp(0, 1), clean, protocol):.2f} dB {label}",
                         fontsize=8)
    rain_panels = [(f"R, stage {t + 1}", r) for t, r in enumerate(rains)]
    axes[1, 0].set_visible(False)
    for ax, (name, r) in zip(axes[1, 1:-1], rain_panels):
        ax.imshow(rain_display(r, gain))
        ax.set_title(name, fontsize=8)
    axes[1, -1].imshow(rain_display(true_rain, gain))
    axes[1, -1].set_title("true R = O - B", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.0, 0.02, f"rain layers brightened x{gain:.1f}", fontsize=7, color="0.3")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_stage_change(
    rainy: torch.Tensor,
    clean: torch.Tensor,
    rains: Sequence[torch.Tensor],
    first: int = 1,
    last: int | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Three panels: clean ``B``, the error change from stage ``first`` to ``last`` (red: worse),
    and the excess rain stage ``last`` removes (red: more than the true rain).

    Inputs as :func:`stage_change`, whose numbers the panel titles give.
    """
    c = stage_change(rainy, clean, rains, first, last)
    h, w = c["change"].shape
    fig, axes = plt.subplots(1, 3, figsize=(11, 11 / 3 * h / w + 0.8), layout="constrained")
    axes[0].imshow(to_display(clean))
    axes[0].set_title("clean B", fontsize=9)
    lim = max(float(np.quantile(np.abs(c["change"]), 0.99)), 1e-6)
    im = axes[1].imshow(c["change"], cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title(f"squared error, stage {c['last']} minus stage {c['first']}\n"
                      f"worse on {c['worse']:.0%} of pixels, better on {c['better']:.0%}",
                      fontsize=9)
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    lim = max(float(np.quantile(np.abs(c["excess"]), 0.99)), 1e-6)
    im = axes[2].imshow(c["excess"], cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[2].set_title(f"R (stage {c['last']}) minus true rain O - B\nwhere worse: R "
                      f"{c['rain_where_worse']:.3f}, true {c['true_where_worse']:.3f}",
                      fontsize=9)
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_stage_curves(
    results: Mapping[str, Any],
    metrics: Sequence[str] = ("psnr_y", "ssim_y"),
    *,
    title: str | None = None,
    gain: bool = False,
) -> Figure:
    """Mean score after each stage, one line per model, one panel per metric.

    Parameters
    ----------
    results
        ``{model name: EvalResult or rows}``, evaluated with ``stages='all'``.
    metrics
        Metric keys, one panel each.
    title
        Figure title.
    gain
        Plot the mean gain over the rainy input (0 at the input), so a stage that makes the
        image worse than the rain did shows below zero.

    Returns
    -------
    matplotlib.figure.Figure
        x = stage (0 = the rainy input), y = mean over images. A one-stage model (DSEN) is
        drawn to stage 1 and continued as a dotted line, since it has no later stage.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False,
                             layout="constrained")
    t_max = max(len(stage_means(r)[0]) - 1 for r in results.values())
    for ax, metric in zip(axes[0], metrics):
        for i, (name, res) in enumerate(results.items()):
            labels, means = stage_means(res, metric)
            if gain:
                means = [m - means[0] for m in means]
            x = list(range(len(labels)))
            color = f"C{i}"
            short = len(labels) - 1 < t_max
            label = f"{name} ({len(labels) - 1} stage{'s' if len(labels) > 2 else ''})" if short \
                else name
            ax.plot(x, means, "o-", color=color, label=label, ms=4)
            if short:
                ax.plot([x[-1], t_max], [means[-1], means[-1]], ":", color=color)
        ax.set_xticks(range(t_max + 1))
        ax.set_xticklabels(["input", *(str(t) for t in range(1, t_max + 1))])
        unit = " (dB)" if metric.startswith("psnr") else ""
        proto = "Y" if metric.endswith("_y") else "RGB"
        what = f"{metric.split('_')[0].upper()} {proto}"
        if gain:
            ax.axhline(0, color="k", ls=":", lw=1)
        ax.set(xlabel="stage", ylabel=(f"gain in {what} over the input" if gain else what)
               + unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------ sweep


def plot_angle_sweep(
    sweeps: Mapping[str, Mapping[Any, Any]],
    metric: str = "psnr_y",
    *,
    train_range: tuple[float, float] | None = (-10.0, 10.0),
    title: str = "Tilted-rain generalization (trained on near-vertical rain)",
    gain: bool = False,
) -> Figure:
    """Score against test rain angle, one line per model (the paper's generalization claim).

    Parameters
    ----------
    sweeps
        ``{model name: {angle: EvalResult or rows}}``.
    metric
        Metric key (``'psnr_y'`` by default).
    train_range
        Angle range the models were trained on, shaded (None: no shading).
    title
        Axes title.
    gain
        Plot the gain over the rainy input (mean ± sd over images of output minus input), so
        a model that makes the image worse shows below zero.

    Returns
    -------
    matplotlib.figure.Figure
        Mean ± sd over images at each angle; the rainy input as a dotted black line (zero
        with ``gain``). Angles in degrees, 0 = vertical streaks.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    if train_range is not None:
        ax.axvspan(*train_range, color="0.9", label=f"training angles ({train_range[0]:g}° "
                                                     f"to {train_range[1]:g}°)")
    base = None
    for i, (name, sweep) in enumerate(sweeps.items()):
        c = sweep_curve(sweep, metric)
        y, err = (c["gain"], c["gain_sd"]) if gain else (c["mean"], c["sd"])
        ax.errorbar(c["angle"], y, yerr=err, marker="o", ms=4, capsize=3, color=f"C{i}",
                    label=name)
        base = c
    if base is not None and np.isfinite(base["input"]).any():
        ax.plot(base["angle"], 0 * base["input"] if gain else base["input"], "k:",
                label="rainy input")
        ax.set_xticks(base["angle"])
    proto = "Y" if metric.endswith("_y") else "RGB"
    what = f"{metric.split('_')[0].upper()} {proto}"
    ax.set(xlabel="test rain angle (degrees, 0 = vertical)",
           ylabel=(f"gain in {what} over the rainy input" if gain else what) + (
               " (dB)" if metric.startswith("psnr") else ""), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


# ------------------------------------------------------------------------------ before/after
def plot_before_after(
    before: torch.Tensor | np.ndarray,
    after: torch.Tensor | np.ndarray,
    *,
    reference: torch.Tensor | np.ndarray | None = None,
    titles: Sequence[str] = ("before (rainy)", "after (derained)", "clean reference"),
    panel_width: float = 4.0,
) -> Figure:
    """Side-by-side comparison of a photo before and after deraining.

    Parameters
    ----------
    before, after
        ``(3, H, W)`` tensors or ``(H, W, 3)`` arrays.
    reference
        Optional clean image, shown third (synthetic rain only: a real photo has none).
    titles
        Panel titles.
    panel_width
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = [before, after] + ([reference] if reference is not None else [])
    first = to_display(before)
    h, w = first.shape[:2]
    fig, axes = plt.subplots(1, len(images), figsize=(panel_width * len(images),
                                                      panel_width * h / w + 0.4),
                             squeeze=False, layout="constrained")
    for ax, img, name in zip(axes[0], images, titles):
        ax.imshow(to_display(img))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
