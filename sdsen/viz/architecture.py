"""Architecture figures for notebook 03: the SDSEN stage loop, shapes and costs.

Feature maps inside a stage are ``(B, C, G, H, W)`` (``G`` = 4 for p4, 8 for p4m; ``(B, C, H, W)``
for the plain ``'z2'`` CNN); images and rain layers are ``(B, 3, H, W)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import EngFormatter
from torch import nn

__all__ = ["architecture_diagram", "cost_bars", "trace_shapes"]

_COLORS = {
    "pre": "#cfe2f3",
    "block": "#d9ead3",
    "link": "#fce5cd",
    "dec": "#ead1dc",
    "io": "#eeeeee",
}


def _box(ax, x: float, y: float, w: float, h: float, text: str, kind: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02",
            fc=_COLORS[kind],
            ec="0.3",
            lw=0.8,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=7)


def _arrow(
    ax,
    p: tuple[float, float],
    q: tuple[float, float],
    color: str = "0.2",
    style: str = "-|>",
    ls: str = "-",
    rad: float = 0.0,
) -> None:
    ax.add_patch(
        FancyArrowPatch(
            p,
            q,
            arrowstyle=style,
            mutation_scale=8,
            color=color,
            lw=0.9,
            ls=ls,
            connectionstyle=f"arc3,rad={rad}",
        )
    )


def architecture_diagram(
    stages: int = 3,
    blocks: int = 4,
    links: bool = True,
    group: str = "p4",
    decoder: str = "official",
) -> Figure:
    """Boxes-and-arrows diagram of SDSEN (``links=True``) or DSEN (``stages=1``, no links).

    One row per stage: pre-layer (lifting group conv), ``blocks`` residual blocks, decoder, and
    the output ``R_t``; ``x_{t+1} = O - R_t`` feeds the next row; dashed orange arrows are the
    links from block ``i`` of stage ``t`` to block ``i`` of stage ``t + 1``.

    Parameters
    ----------
    stages, blocks, links
        As in :class:`~sdsen.models.ModelConfig` (draw few stages: they share weights).
    group, decoder
        Only used in the labels.

    Returns
    -------
    matplotlib.figure.Figure
        One axis.
    """
    col_w, row_h = 1.25, 1.5
    n_cols = blocks + 4  # input, pre, blocks, decoder, output
    fig, ax = plt.subplots(figsize=(1.2 * n_cols + 0.6, 1.25 * stages + 0.9), layout="constrained")
    g = {"p4": 4, "p4m": 8}.get(group, 1)
    for t in range(stages):
        y = -t * row_h
        xs = [i * col_w for i in range(n_cols)]
        _box(ax, xs[0], y, 0.9, 0.55, "O" if t == 0 else f"x{t} = O - R{t - 1}", "io")
        _box(ax, xs[1], y, 0.95, 0.55, f"pre-layer\n{group} lift", "pre")
        for i in range(blocks):
            _box(ax, xs[2 + i], y, 0.95, 0.55, f"block {i}\n(B,C,{g},H,W)", "block")
        _box(ax, xs[-2], y, 0.95, 0.55, f"decoder\n{decoder}", "dec")
        _box(ax, xs[-1], y, 0.8, 0.55, f"R{t}", "io")
        for a, b in itertools.pairwise(xs):
            _arrow(ax, (a + 0.47, y), (b - 0.47, y))
        if t + 1 < stages:  # feedback x_{t+1} = O - R_t: down, left along the gap, down
            mid = y - row_h / 2
            ax.plot([xs[-1], xs[-1], xs[0]], [y - 0.28, mid, mid], color="0.45", lw=0.9)
            _arrow(ax, (xs[0], mid), (xs[0], y - row_h + 0.28), color="0.45")
            ax.text(xs[0] + 0.1, mid + 0.05, f"O - R{t}", fontsize=7, color="0.3", va="bottom")
            if links:
                for i in range(blocks):
                    x = xs[2 + i]
                    _arrow(ax, (x, y - 0.3), (x, y - row_h + 0.3), color="tab:orange", ls="--")
    if links and stages > 1:
        ax.text(xs[2] + 0.05, -0.42, "link", color="tab:orange", fontsize=7, ha="left")
    ax.set_xlim(-0.6, (n_cols - 1) * col_w + 0.6)
    ax.set_ylim(-(stages - 1) * row_h - 0.6, 0.6)
    ax.set_axis_off()
    name = "SDSEN" if stages > 1 else "DSEN"
    ax.set_title(f"{name}: {stages} stage(s) shown, weights shared across stages", fontsize=9)
    return fig


def trace_shapes(
    model: nn.Module,
    x: torch.Tensor,
    names: tuple[str, ...] = ("pre_layer", "re_layer", "connect_layers", "dec"),
) -> list[tuple[str, tuple[int, ...]]]:
    """Output shapes of the named sub-modules during one forward pass, in call order.

    Parameters
    ----------
    model
        A :class:`~sdsen.models.SDSEN` / :class:`~sdsen.models.DSEN`.
    x
        Input batch ``(B, 3, H, W)``.
    names
        Module names to record; the children of a ``ModuleList`` or ``Sequential`` among them
        (``re_layer.0``, ``dec.0``) are recorded instead of (or besides) the container.

    Returns
    -------
    list of (str, tuple)
        ``(module name, output shape)`` for every call (a stage loop calls each module once per
        stage).

    Examples
    --------
    >>> from sdsen.models import DSEN
    >>> trace_shapes(DSEN(channels=2, blocks=1), torch.rand(1, 3, 9, 7))[0]
    ('pre_layer', (1, 2, 4, 9, 7))
    """
    calls: list[tuple[str, tuple[int, ...]]] = []
    modules = dict(model.named_modules())
    handles = []
    for name, mod in modules.items():
        parent = name.rpartition(".")[0]
        containers = (nn.ModuleList, nn.Sequential)
        wanted = (name in names and not isinstance(mod, nn.ModuleList)) or (
            parent in names and isinstance(modules[parent], containers)
        )
        if wanted:

            def hook(m: nn.Module, inp: tuple, out: torch.Tensor, name: str = name) -> None:
                calls.append((name, tuple(out.shape)))

            handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def cost_bars(rows: Mapping[str, tuple[int, float]]) -> Figure:
    """Parameters and multiply-adds per pixel of several models, two bar charts.

    Parameters
    ----------
    rows
        ``{model name: (parameters, multiply-adds per pixel)}`` (from
        :func:`sdsen.models.summary`).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes.
    """
    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for ax, k, label in ((axes[0], 0, "parameters"), (axes[1], 1, "multiply-adds per pixel")):
        vals = [rows[n][k] for n in names]
        bars = ax.bar(names, vals, color="tab:blue")
        ax.bar_label(
            bars, [f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v:,.0f}" for v in vals], fontsize=8
        )
        ax.yaxis.set_major_formatter(EngFormatter())
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, rotation=20)
        ax.margins(y=0.15)
    return fig
