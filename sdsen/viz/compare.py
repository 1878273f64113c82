"""Interactive comparisons for the notebooks: a before/after wipe and a stage slider.

Both widgets need ``ipywidgets`` (imported lazily) and a live kernel; the notebooks always draw
the static figure too (:func:`sdsen.viz.results.plot_before_after`,
:func:`sdsen.viz.results.plot_stage_grid`), so a rendered notebook loses nothing without them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .images import rain_display, to_display
from .results import _psnr

__all__ = ["before_after_widget", "png_bytes", "stage_widget", "wipe"]


def wipe(before: np.ndarray, after: np.ndarray, position: float, line: bool = True) -> np.ndarray:
    """Composite of two images split at a vertical line: ``after`` left of it, ``before`` right.

    Parameters
    ----------
    before, after
        ``(H, W, 3)`` float arrays of the same shape.
    position
        Split position as a fraction of the width, in ``[0, 1]`` (0: all ``before``).
    line
        Draw a one-pixel white line at the split.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)``.

    Examples
    --------
    >>> a, b = np.zeros((2, 4, 3)), np.ones((2, 4, 3))
    >>> wipe(a, b, 0.5, line=False)[0, :, 0].tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} vs {after.shape}")
    w = before.shape[1]
    cut = round(min(max(position, 0.0), 1.0) * w)
    out = before.copy()
    out[:, :cut] = after[:, :cut]
    if line and 0 < cut < w:
        out[:, cut - 1] = 1.0
    return out


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG encoding of an ``(H, W, 3)`` float image in ``[0, 1]``, upscaled by pixel repetition.

    Examples
    --------
    >>> png_bytes(np.zeros((2, 2, 3)))[:4]
    b'\\x89PNG'
    """
    import matplotlib.image as mpimg

    arr = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    mpimg.imsave(buf, arr, format="png")
    return buf.getvalue()


def _scale_for(width: int, target: int = 480) -> int:
    return max(1, target // max(width, 1))


def before_after_widget(before: Any, after: Any, *, labels: Sequence[str] = ("derained",
                                                                              "rainy")) -> Any:
    """A wipe slider: drag to reveal the derained image over the rainy one.

    Parameters
    ----------
    before, after
        ``(3, H, W)`` tensors or ``(H, W, 3)`` arrays (rainy, derained).
    labels
        Names of the left (``after``) and right (``before``) sides.

    Returns
    -------
    ipywidgets.VBox
        A ``FloatSlider`` (split position) above an ``Image``.

    Raises
    ------
    ImportError
        Without ``ipywidgets``.
    """
    import ipywidgets as widgets

    b, a = to_display(before), to_display(after)
    scale = _scale_for(b.shape[1])
    image = widgets.Image(value=png_bytes(wipe(b, a, 0.5), scale), format="png")
    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, readout=False,
                                 description=f"{labels[0]} | {labels[1]}",
                                 style={"description_width": "initial"},
                                 layout=widgets.Layout(width="480px"))

    def update(change: dict[str, Any]) -> None:
        image.value = png_bytes(wipe(b, a, float(change["new"])), scale)

    slider.observe(update, names="value")
    return widgets.VBox([slider, image])


def stage_widget(rainy: torch.Tensor, clean: torch.Tensor | None,
                 rains: Sequence[torch.Tensor], *, protocol: str = "y") -> Any:
    """A stage slider: the estimate ``O - R_t`` and the rain layer ``R_t`` after stage ``t``.

    Parameters
    ----------
    rainy
        ``O``, ``(3, H, W)`` or ``(1, 3, H, W)``.
    clean
        ``B`` (same shape) for the PSNR readout, or None.
    rains
        Per-stage rain layers ``[R_1, ..., R_T]`` as ``model(rainy[None])`` returns them.
    protocol
        PSNR protocol of the readout.

    Returns
    -------
    ipywidgets.VBox
        An ``IntSlider`` (stage 1 .. T), a readout and an image ``rainy | O - R_t | R_t``.

    Raises
    ------
    ImportError
        Without ``ipywidgets``.
    """
    import ipywidgets as widgets

    rainy = (rainy[0] if rainy.dim() == 4 else rainy).detach().float().cpu()
    if clean is not None:
        clean = (clean[0] if clean.dim() == 4 else clean).detach().float().cpu()
    rains = [(r[0] if r.dim() == 4 else r).detach().float().cpu() for r in rains]
    ref = (rainy - clean) if clean is not None else rains[-1]
    gain = 1.0 / max(float(ref.abs().flatten().quantile(0.995)), 1e-3)
    gap = np.ones((rainy.shape[1], 4, 3), dtype=np.float32)
    scale = _scale_for(3 * rainy.shape[2], 720)
    frames, readouts = [], []
    for r in rains:
        est = (rainy - r).clamp(0, 1)
        frames.append(png_bytes(np.concatenate(
            [to_display(rainy), gap, to_display(est), gap, rain_display(r, gain)], axis=1), scale))
        readouts.append(f"PSNR {protocol.upper() if protocol == 'rgb' else 'Y'} "
                        f"{_psnr(est, clean, protocol):.2f} dB" if clean is not None else "")
    image = widgets.Image(value=frames[-1], format="png")
    readout = widgets.HTML(value=f"rainy | after stage {len(rains)} | rain layer R &nbsp; "
                                 f"{readouts[-1]}")
    slider = widgets.IntSlider(value=len(rains), min=1, max=len(rains), description="stage")

    def update(change: dict[str, Any]) -> None:
        t = int(change["new"])
        image.value = frames[t - 1]
        readout.value = f"rainy | after stage {t} | rain layer R &nbsp; {readouts[t - 1]}"

    slider.observe(update, names="value")
    return widgets.VBox([slider, readout, image])
