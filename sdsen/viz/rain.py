"""Figures of synthetic rain: photos, ``O = B + R`` decompositions, angle sweeps, presets, traps.

Images are accepted as numpy ``(H, W, 3)`` arrays or torch ``(3, H, W)`` tensors, float RGB in
``[0, 1]``; a rain layer ``R = O - B`` may be negative (haze darkens bright regions). Every
function returns a matplotlib figure (created with :mod:`matplotlib.pyplot`, so a notebook shows
it); save it with :func:`sdsen.viz.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..data.io import to_tensor
from .images import ImageLike, as_hwc

__all__ = [
    "angle_sweep",
    "jpeg_damage",
    "jpeg_roundtrip",
    "preset_gallery",
    "rain_decomposition",
    "rain_histograms",
    "show_images",
]

def _interp(arr: np.ndarray) -> str:
    """``'nearest'`` for small images (exact pixels, small PNGs), antialiasing for big photos."""
    return "nearest" if max(arr.shape[:2]) <= 256 else "antialiased"


def _show(ax: Axes, img: ImageLike, title: str | None = None) -> None:
    arr = as_hwc(img)
    ax.imshow(np.clip(arr, 0.0, 1.0), interpolation=_interp(arr))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def _rain_range(rain: ImageLike) -> tuple[float, float]:
    """Display range of the grey rain layer: ``[min(0, p1), p99.5]``."""
    g = as_hwc(rain).mean(axis=2)
    lo = min(0.0, float(np.percentile(g, 1)))
    return lo, max(float(np.percentile(g, 99.5)), lo + 1e-6)


def _show_rain(
    ax: Axes,
    rain: ImageLike,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> None:
    """Grey mean of ``R`` over channels; black is 0 (or the 1st percentile if R < 0 there)."""
    g = as_hwc(rain).mean(axis=2)
    lo, hi = value_range or _rain_range(rain)
    ax.imshow(g, cmap="gray", vmin=lo, vmax=hi, interpolation=_interp(g))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def _grid(n_rows: int, n_cols: int, size: float = 2.4) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(size * n_cols, size * n_rows), squeeze=False, layout="constrained"
    )
    return fig, axes


def show_images(
    images: Sequence[ImageLike],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 2.6,
) -> Figure:
    """Show images side by side (one axis each).

    Parameters
    ----------
    images
        Each ``(H, W, 3)`` or ``(3, H, W)``, in ``[0, 1]``.
    titles
        One per image.
    ncols
        Columns of the grid (default: all images on one row).
    size
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(images)`` visible axes (unused grid cells are removed).
    """
    n = len(images)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = _grid(nrows, ncols, size)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, images[i], titles[i] if titles else None)
        else:
            ax.remove()
    return fig


def rain_decomposition(
    rainy: ImageLike, clean: ImageLike, rain: ImageLike, title: str | None = None
) -> Figure:
    """The three images of a pair: ``B`` (clean), ``R = O - B`` (rain) and ``O = B + R``.

    Parameters
    ----------
    rainy, clean, rain
        ``O``, ``B`` and ``R``, each ``(H, W, 3)`` or ``(3, H, W)``.
    title
        Figure title (e.g. the rain parameters).

    Returns
    -------
    matplotlib.figure.Figure
        Three axes.
    """
    fig, axes = _grid(1, 3, 3.0)
    _show(axes[0, 0], clean, "B (clean)")
    _show_rain(axes[0, 1], rain, "R = O - B (rain)")
    _show(axes[0, 2], rainy, "O = B + R (rainy)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def angle_sweep(clean: ImageLike, angles: Sequence[float], seed: int = 0, **params: Any) -> Figure:
    """The same rain at several streak angles: rainy images (top row) and rain layers (bottom).

    Parameters
    ----------
    clean
        Background ``B``, ``(H, W, 3)`` or ``(3, H, W)``.
    angles
        Streak angles in degrees (:mod:`sdsen.rain` convention: 0 vertical, positive leans the
        top of the streak to the right).
    seed
        Seed of the streaks, the same for every angle (same drops, different direction).
    **params
        Other :func:`sdsen.rain.synthesize` arguments (``length``, ``density``, ...).

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * len(angles)`` axes.
    """
    from sdsen.rain import synthesize

    b = to_tensor(as_hwc(clean))
    fig, axes = _grid(2, len(angles))
    for j, angle in enumerate(angles):
        s = synthesize(b, angle=angle, seed=seed, **params)
        _show(axes[0, j], s.rainy, f"angle {angle:g} deg")
        _show_rain(axes[1, j], s.rain)
    axes[0, 0].text(-0.08, 0.5, "O", transform=axes[0, 0].transAxes, ha="right", va="center")
    axes[1, 0].text(-0.08, 0.5, "R", transform=axes[1, 0].transAxes, ha="right", va="center")
    return fig


def preset_gallery(samples: Mapping[str, Any]) -> Figure:
    """Rainy image (top) and rain layer (bottom) for each named preset.

    Parameters
    ----------
    samples
        ``{preset name: RainSample}`` (from :func:`sdsen.rain.synthesize` with ``preset=``).

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * len(samples)`` axes.
    """
    fig, axes = _grid(2, len(samples), 2.8)
    for j, (name, s) in enumerate(samples.items()):
        _show(axes[0, j], s.rainy, name)
        _show_rain(axes[1, j], s.rain)
    return fig


def rain_histograms(
    rains: Mapping[str, ImageLike], bins: int = 101, value_range: tuple[float, float] | None = None
) -> Figure:
    """Histograms of the values of rain layers (all channels), log counts.

    Used to catch a swapped pair: rain adds light, so ``R = O - B`` is mostly ``>= 0``; a
    histogram mostly below zero means ``O`` and ``B`` were swapped.

    Parameters
    ----------
    rains
        ``{label: R}``, each ``(H, W, 3)`` or ``(3, H, W)``.
    bins, value_range
        Histogram bins over ``value_range`` (default: symmetric, ``±max |R|`` of all layers).

    Returns
    -------
    matplotlib.figure.Figure
        One axis.
    """
    if value_range is None:
        m = max(float(np.abs(as_hwc(r)).max()) for r in rains.values()) or 1.0
        value_range = (-m, m)
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    for label, r in rains.items():
        v = as_hwc(r).ravel()
        ax.hist(
            v,
            bins=bins,
            range=value_range,
            histtype="step",
            lw=1.5,
            label=f"{label}: {100 * (v < 0).mean():.0f} % negative",
        )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("value of R = O - B")
    ax.set_ylabel("pixels x channels")
    ax.legend(fontsize=8)
    return fig


def jpeg_roundtrip(img: ImageLike, quality: int) -> np.ndarray:
    """Encode ``img`` as JPEG of the given quality with OpenCV and decode it again.

    Parameters
    ----------
    img
        ``(H, W, 3)`` or ``(3, H, W)`` RGB in ``[0, 1]``.
    quality
        OpenCV ``IMWRITE_JPEG_QUALITY``, 0 to 100.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float32 RGB in ``[0, 1]``, as a JPEG-saved file reads back.

    Examples
    --------
    >>> x = np.full((8, 8, 3), 0.5, np.float32)
    >>> float(np.abs(jpeg_roundtrip(x, 90) - x).max()) < 0.01
    True
    """
    u8 = np.rint(np.clip(as_hwc(img), 0.0, 1.0) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def jpeg_damage(
    rain: ImageLike,
    rain_jpeg: ImageLike,
    errors: Mapping[int, float] | None = None,
    quality: int | None = None,
) -> Figure:
    """What JPEG recompression does to the rain layer.

    Parameters
    ----------
    rain
        ``R = O - B`` of the lossless pair, ``(H, W, 3)`` or ``(3, H, W)``.
    rain_jpeg
        ``R`` recomputed after both images went through JPEG.
    errors
        Optional ``{quality: error}`` (e.g. RMS error of ``R``) drawn as a fourth panel.
    quality
        The JPEG quality of ``rain_jpeg``, for the title.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels and a colour bar (plus a fourth panel with ``errors``).
    """
    n = 3 + (errors is not None)
    fig, axes = _grid(1, n, 2.8)
    q = f" (quality {quality})" if quality is not None else ""
    shared = _rain_range(rain)  # the same grey scale for both rain layers
    _show_rain(axes[0, 0], rain, "R from PNG pair", shared)
    _show_rain(axes[0, 1], rain_jpeg, "R from JPEG pair" + q, shared)
    diff = np.abs(as_hwc(rain_jpeg) - as_hwc(rain)).mean(axis=2)
    im = axes[0, 2].imshow(diff, cmap="magma", vmin=0, interpolation=_interp(diff))
    axes[0, 2].set_axis_off()
    axes[0, 2].set_title("|difference|", fontsize=9)
    fig.colorbar(im, ax=axes[0, 2], shrink=0.7)
    if errors is not None:
        ax = axes[0, 3]
        qs = sorted(errors)
        ax.plot(qs, [errors[k] for k in qs], "o-")
        ax.set_xlabel("JPEG quality")
        ax.set_ylabel("RMS error of R")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    return fig
