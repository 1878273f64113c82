"""Images for display: one converter to numpy ``(H, W, 3)`` float and its two display forms.

Built on :func:`sdsen.data.to_numpy` (tensor ``(3, H, W)`` -> array ``(H, W, 3)``), the
package's one layout converter pair with :func:`sdsen.data.to_tensor`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.io import to_numpy

__all__ = ["ImageLike", "as_hwc", "rain_display", "to_display"]

ImageLike = np.ndarray | torch.Tensor


def as_hwc(img: ImageLike) -> np.ndarray:
    """A float32 numpy ``(H, W, 3)`` view of ``img``.

    ``img`` is a ``(3, H, W)`` or ``(1, 3, H, W)`` tensor, or an ``(H, W, 3)`` array; uint8
    levels are scaled to ``[0, 1]``. Values are not clipped (a rain layer may be negative).

    Examples
    --------
    >>> as_hwc(torch.zeros(1, 3, 4, 5)).shape
    (4, 5, 3)
    >>> float(as_hwc(np.full((2, 2, 3), 255, np.uint8)).max())
    1.0
    """
    if isinstance(img, torch.Tensor):
        x = img[0] if img.dim() == 4 and img.shape[0] == 1 else img
        if x.dim() == 3 and x.shape[0] == 3:
            return to_numpy(x)
        img = x.detach().to("cpu", torch.float32).numpy()
    arr = np.asarray(img)
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array or (3, H, W) tensor, got {arr.shape}")
    return arr


def to_display(image: ImageLike) -> np.ndarray:
    """An image as an ``(H, W, 3)`` float array clipped to ``[0, 1]`` for ``imshow``.

    Examples
    --------
    >>> float(to_display(2 * torch.ones(1, 3, 4, 5)).max())
    1.0
    """
    return np.clip(as_hwc(image), 0.0, 1.0)


def rain_display(rain: ImageLike, gain: float) -> np.ndarray:
    """A rain layer ``R`` brightened for display: ``clip(gain * R, 0, 1)`` as ``(H, W, 3)``.

    Streaks add light (``R > 0``); the clip hides the small negative parts that haze over bright
    regions can produce. Use one ``gain`` for every layer of a figure so they compare.

    Examples
    --------
    >>> float(rain_display(torch.full((3, 2, 2), 0.1), gain=4.0).max())
    0.4000000059604645
    """
    return np.clip(as_hwc(rain) * gain, 0.0, 1.0)
