r"""Figures for group convolutions and equivariance (notebook 02).

Group feature maps are ``(B, C, G, H, W)`` with ``G`` = 4 (p4) or 8 (p4m); the element at index
``4 m + r`` of the group axis is ``(r, m)``: rotate by ``r`` quarter turns, then mirror if ``m``
(:mod:`sdsen.gconv.groups`). Written :math:`f^m r^r` in the labels, since it acts as
:math:`T = F^m R^r`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from sdsen.gconv import Group, GroupConv2d

__all__ = [
    "cayley_table",
    "element_label",
    "equivariance_bars",
    "filter_bank",
    "group_maps",
    "group_table",
    "streak_responses",
]

_SUP = {1: "", 2: "²", 3: "³"}


def element_label(g: tuple[int, int]) -> str:
    """Short name of ``g = (r, m)``: ``e``, ``r``, ``r²``, ``r³``, ``f``, ``fr``, ``fr²``, ``fr³``.

    Examples
    --------
    >>> [element_label(g) for g in [(0, 0), (2, 0), (3, 1)]]
    ['e', 'r²', 'fr³']
    """
    r, m = g
    s = ("f" if m else "") + (f"r{_SUP[r]}" if r else "")
    return s or "e"


def cayley_table(group: Group) -> np.ndarray:
    r"""The group law as a table: ``T[i, j]`` is the index of :math:`g_i g_j`.

    Parameters
    ----------
    group
        ``P4`` or ``P4M`` (or ``Z2``).

    Returns
    -------
    numpy.ndarray
        Integer array ``(G, G)``; rows and columns in group-axis order (index ``4 m + r``).

    Examples
    --------
    >>> from sdsen.gconv import P4
    >>> cayley_table(P4)[1].tolist()  # r times (e, r, r², r³)
    [1, 2, 3, 0]
    """
    els = group.elements
    return np.array([[group.index(group.compose(a, b)) for b in els] for a in els])


def group_table(group: Group) -> Figure:
    """The Cayley table of ``group`` as a coloured grid with element labels.

    Returns
    -------
    matplotlib.figure.Figure
        One axis.
    """
    t = cayley_table(group)
    labels = [element_label(g) for g in group.elements]
    n = len(labels)
    fig, ax = plt.subplots(figsize=(0.5 * n + 1.2, 0.5 * n + 1.0), layout="constrained")
    ax.imshow(t, cmap="tab10" if n <= 10 else "tab20", vmin=0, vmax=9)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, labels[t[i, j]], ha="center", va="center", fontsize=9)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.xaxis.tick_top()
    ax.set_xlabel("h")
    ax.set_ylabel("g")
    ax.set_title(f"{group.name}: entry = g·h (apply h first)", fontsize=9)
    return fig


def _sym_imshow(ax, a: np.ndarray, vmax: float, title: str | None = None) -> None:
    ax.imshow(a, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def filter_bank(
    layer: GroupConv2d, out_channel: int = 0, in_channel: int = 0, in_plane: int = 0
) -> Figure:
    """One base filter of a group convolution and its ``G`` transformed copies.

    Parameters
    ----------
    layer
        A :class:`~sdsen.gconv.GroupConv2d` (e.g. ``P4ConvZ2``, ``P4MConvZ2``); its weight is
        ``(C_out, C_in, G_in, k, k)``.
    out_channel, in_channel, in_plane
        Which base filter: ``weight[out_channel, in_channel, in_plane]``.

    Returns
    -------
    matplotlib.figure.Figure
        ``1 + G`` axes: the base filter, then copy ``g`` on its own axis, labelled by the
        element (rows of 4; p4m adds a row for the mirrored copies).
    """
    t = layer.transformed_filters()[out_channel, :, in_channel, in_plane].cpu().numpy()
    base = layer.weight.detach()[out_channel, in_channel, in_plane].cpu().numpy()
    g = t.shape[0]
    rows = -(-g // 4)
    vmax = float(np.abs(base).max()) or 1.0
    fig, axes = plt.subplots(rows, 5, figsize=(9, 1.9 * rows), squeeze=False, layout="constrained")
    _sym_imshow(axes[0, 0], base, vmax, "base filter")
    for r in range(1, rows):
        axes[r, 0].remove()
    elements = layer.group.elements
    for i in range(g):
        _sym_imshow(axes[i // 4, 1 + i % 4], t[i], vmax, f"copy {i}: {element_label(elements[i])}")
    fig.suptitle(f"{type(layer).__name__}: {g} copies of one filter", fontsize=10)
    return fig


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).numpy()


def group_maps(
    image: torch.Tensor,
    maps: torch.Tensor,
    image_moved: torch.Tensor,
    maps_moved: torch.Tensor,
    labels: tuple[str, str] = ("input", "rotated input"),
) -> Figure:
    """Feature maps on the group for an image and its transformed copy, one row each.

    Parameters
    ----------
    image, image_moved
        ``(3, H, W)`` (or ``(H, W)``) inputs, the second moved by a group element.
    maps, maps_moved
        ``(G, H', W')``: one channel of the layer's output ``(B, C, G, H', W')`` for each input.
    labels
        Row labels.

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * (1 + G)`` axes: the input, then plane ``g`` of the maps (a shared diverging colour
        scale clipped at the 99.5th percentile of ``|maps|``).
    """
    g = maps.shape[0]
    fig, axes = plt.subplots(
        2, 1 + g, figsize=(1.7 * (1 + g), 3.8), squeeze=False, layout="constrained"
    )
    both = torch.cat([maps.detach().flatten(), maps_moved.detach().flatten()]).abs().float()
    vmax = float(torch.quantile(both, 0.995)) or 1.0  # robust to strong borders
    for row, (img, m, lab) in enumerate(
        ((image, maps, labels[0]), (image_moved, maps_moved, labels[1]))
    ):
        a = _np(img)
        a = a.transpose(1, 2, 0) if a.ndim == 3 else a
        axes[row, 0].imshow(np.clip(a, 0, 1), cmap="gray", interpolation="nearest")
        axes[row, 0].set_axis_off()
        axes[row, 0].set_title(lab, fontsize=9)
        for i in range(g):
            _sym_imshow(axes[row, 1 + i], _np(m[i]), vmax, f"plane {i}")
    return fig


def equivariance_bars(
    errors: Mapping[str, float],
    tolerance: float | None = 1e-5,
    floor: float = 1e-9,
    ylabel: str = "max equivariance error",
) -> Figure:
    """Bar chart of equivariance errors (log scale), one bar per model or layer.

    Parameters
    ----------
    errors
        ``{name: max over group elements of max |fn(L_g x) - L_g fn(x)|}``.
    tolerance
        Drawn as a dashed line (float32 round-off level).
    floor
        Errors below it (exact zeros) are drawn at ``floor``, so the log axis can show them.
    ylabel
        Label of the error axis (e.g. say "relative" for ``equivariance_error(relative=True)``).

    Returns
    -------
    matplotlib.figure.Figure
        One axis.
    """
    names = list(errors)
    vals = [max(float(errors[n]), floor) for n in names]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(names), 3.6), layout="constrained")
    colors = ["tab:red" if tolerance is not None and v > tolerance else "tab:blue" for v in vals]
    ax.bar(range(len(names)), vals, color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if tolerance is not None:
        ax.axhline(tolerance, color="k", ls="--", lw=0.8, label=f"tolerance {tolerance:g}")
        ax.legend(fontsize=8)
    ax.set_ylim(floor / 2, max(max(vals) * 5, 1.0))
    return fig


def streak_responses(
    streak: torch.Tensor,
    streak_moved: torch.Tensor,
    resp: torch.Tensor,
    resp_moved: torch.Tensor,
    pooled: torch.Tensor,
    pooled_moved: torch.Tensor,
) -> Figure:
    """A streak and its rotated copy: group responses (equivariant) and pooled ones (invariant).

    Parameters
    ----------
    streak, streak_moved
        ``(H, W)`` input images.
    resp, resp_moved
        ``(G, H, W)``: one output channel of a group convolution for each input.
    pooled, pooled_moved
        ``(H, W)``: the responses pooled over the group axis.

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * (G + 2)`` axes: input, ``G`` planes, pooled map, for each input.
    """
    g = resp.shape[0]
    fig, axes = plt.subplots(
        2, g + 2, figsize=(1.7 * (g + 2), 3.8), squeeze=False, layout="constrained"
    )
    vmax = float(max(resp.abs().max(), resp_moved.abs().max())) or 1.0
    for row, (s, r, p) in enumerate(
        ((streak, resp, pooled), (streak_moved, resp_moved, pooled_moved))
    ):
        axes[row, 0].imshow(_np(s), cmap="gray", interpolation="nearest")
        axes[row, 0].set_title("streak" if row == 0 else "rotated streak", fontsize=9)
        for i in range(g):
            _sym_imshow(axes[row, 1 + i], _np(r[i]), vmax, f"plane {i}")
        _sym_imshow(axes[row, g + 1], _np(p), vmax, "group max")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
    return fig
