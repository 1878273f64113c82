"""Statistics of a rain layer ``R = O - B``: orientation, streak size, intensity, haze share.

Every function takes ``R`` as a numpy array ``(H, W, 3)`` or ``(H, W)``, or a torch tensor
``(3, H, W)`` or ``(H, W)``, and works on its grey level (mean over channels), float64.
Angles follow :mod:`sdsen.rain.synth`: degrees in ``[-90, 90)``, 0 = vertical streaks, positive
= top of the streak leans right.

The streak orientation comes from the gradient structure tensor
``J = sum [[gx^2, gx gy], [gx gy, gy^2]]`` of the high-passed R: the gradient of a streak is
perpendicular to it, and with rows growing downwards its orientation
``phi = atan2(2 Jxy, Jxx - Jyy) / 2`` equals the streak angle of our convention (mod 180).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from scipy import ndimage

__all__ = [
    "dominant_orientation",
    "intensity_histogram",
    "low_frequency_share",
    "orientation_histogram",
    "rain_colour",
    "rain_statistics",
    "streak_profile",
    "streak_segments",
    "streak_width_length",
]


_PRESMOOTH = 1.0


def _gray(rain: Any) -> np.ndarray:
    if isinstance(rain, torch.Tensor):
        r = rain.detach().cpu().double().numpy()
        if r.ndim == 3:
            if r.shape[0] != 3:
                raise ValueError(f"rain tensor must be (3, H, W) or (H, W), got {r.shape}")
            r = r.mean(0)
    else:
        r = np.asarray(rain, dtype=np.float64)
        if r.ndim == 3:
            if r.shape[2] != 3:
                raise ValueError(f"rain array must be (H, W, 3) or (H, W), got {r.shape}")
            r = r.mean(2)
    if r.ndim != 2:
        raise ValueError(f"rain must be one image (H, W[, 3]), got shape {r.shape}")
    return np.ascontiguousarray(r)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _highpass(g: np.ndarray, sigma: float) -> np.ndarray:
    return g - _blur(g, sigma)


def _tensor(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = _blur(g, _PRESMOOTH)  # Gaussian derivatives: isotropic, robust to pixel staircases
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    return gx * gx, gy * gy, gx * gy


def _wrap(a: np.ndarray | float) -> Any:
    return (np.asarray(a) + 90.0) % 180.0 - 90.0


def dominant_orientation(rain: Any, *, highpass_sigma: float = 8.0) -> tuple[float, float]:
    """Dominant streak angle and coherence of R from its global gradient structure tensor.

    Parameters
    ----------
    rain : array or tensor
        ``(H, W, 3)`` / ``(H, W)`` numpy or ``(3, H, W)`` / ``(H, W)`` torch.
    highpass_sigma : float
        R minus its Gaussian blur of this sigma is analysed (removes haze).

    Returns
    -------
    angle : float
        Degrees in ``[-90, 90)``: 0 = vertical, positive = top leans right.
    coherence : float
        ``(l1 - l2) / (l1 + l2)`` of the tensor's eigenvalues, in [0, 1] (1 = one orientation).

    Examples
    --------
    >>> import numpy as np
    >>> r = np.zeros((64, 64)); r[:, ::8] = 1  # vertical lines
    >>> round(dominant_orientation(r)[0], 3)
    0.0
    """
    jxx, jyy, jxy = (t.sum() for t in _tensor(_highpass(_gray(rain), highpass_sigma)))
    phi = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))
    coh = np.hypot(jxx - jyy, 2 * jxy) / max(jxx + jyy, 1e-300)
    return float(_wrap(phi)) + 0.0, float(coh)


def orientation_histogram(
    rain: Any, bins: int = 36, *, sigma: float = 2.0, highpass_sigma: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of local streak angles, weighted by local anisotropic gradient energy.

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.
    bins : int
        Bins over ``[-90, 90)`` degrees.
    sigma : float
        Integration scale of the local structure tensor.
    highpass_sigma : float
        As in :func:`dominant_orientation`.

    Returns
    -------
    hist : numpy.ndarray
        Shape ``(bins,)``, sums to 1.
    edges : numpy.ndarray
        Shape ``(bins + 1,)``, degrees.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.zeros((64, 64)); r[:, ::8] = 1
    >>> h, e = orientation_histogram(r, bins=18)
    >>> float(e[h.argmax()]), float(e[h.argmax() + 1])
    (0.0, 10.0)
    """
    jxx, jyy, jxy = (_blur(t, sigma) for t in _tensor(_highpass(_gray(rain), highpass_sigma)))
    ang = _wrap(0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy)))
    w = np.hypot(jxx - jyy, 2 * jxy)
    hist, edges = np.histogram(ang, bins=bins, range=(-90, 90), weights=w)
    return hist / max(hist.sum(), 1e-300), edges


def _half_distance(ac: np.ndarray, direction: tuple[float, float], rmax: float) -> float:
    """First distance from the centre of ``ac`` along ``direction`` (dx, dy) where ac <= 0.5."""
    cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
    r = np.arange(0, rmax, 0.25)
    vals = ndimage.map_coordinates(ac, [cy + r * direction[1], cx + r * direction[0]], order=1)
    below = np.nonzero(vals <= 0.5)[0]
    if len(below) == 0:
        return float(rmax)
    i = below[0]
    if i == 0:
        return 0.0
    v0, v1 = vals[i - 1], vals[i]
    return float(r[i - 1] + 0.25 * (v0 - 0.5) / max(v0 - v1, 1e-12))


def streak_width_length(
    rain: Any, *, angle: float | None = None, highpass_sigma: float = 16.0
) -> tuple[float, float]:
    """Streak width and length from the autocorrelation of the high-passed R.

    The normalised autocorrelation is read along the dominant streak direction and across it.
    For a streak of length ``L`` (box profile) the along-axis autocorrelation is a triangle of
    full width at half maximum ``L``; for a Gaussian cross-profile of FWHM ``w`` the across-axis
    autocorrelation has FWHM ``w * sqrt(2)``. Hence ``length = FWHM_along`` and
    ``width = FWHM_across / sqrt(2)`` (pixels). Overlapping streaks and texture bias both; the
    same estimator is applied to real and synthetic R, which is what comparisons need.

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.
    angle : float, optional
        Streak angle in degrees; default the dominant orientation.
    highpass_sigma : float
        R minus its Gaussian blur of this sigma is analysed.

    Returns
    -------
    width, length : float
        Pixels.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.zeros((128, 128)); r[10:40, 20] = 1; r[70:100, 80] = 1  # two 30-px streaks
    >>> w, l = streak_width_length(r, angle=0.0)
    >>> 25 < l < 35
    True
    """
    g = _blur(_highpass(_gray(rain), highpass_sigma), _PRESMOOTH)
    if angle is None:
        angle = dominant_orientation(rain)[0]
    f = np.fft.rfft2(g - g.mean())
    ac = np.fft.fftshift(np.fft.irfft2(np.abs(f) ** 2, s=g.shape))
    peak = ac[g.shape[0] // 2, g.shape[1] // 2]
    if peak <= 0:
        return 0.0, 0.0
    ac = ac / peak
    th = np.radians(angle)
    rmax = min(g.shape) / 2 - 1
    along = _half_distance(ac, (np.sin(th), -np.cos(th)), rmax)
    across = _half_distance(ac, (np.cos(th), np.sin(th)), rmax)
    # undo the pre-smoothing (Gaussian, sigma _PRESMOOTH) in quadrature on the cross-profile
    sigma_ac = 2 * across / 2.3548
    width = 2.3548 * np.sqrt(max(sigma_ac**2 / 2 - _PRESMOOTH**2, 0.0))
    return float(width), float(2 * along)


def streak_profile(
    rain: Any, *, angle: float | None = None, half_width: int = 6, quantile: float = 0.9,
    highpass_sigma: float = 8.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean cross-section of the streaks of R, and its full width at half maximum.

    Streak centres are the pixels of the high-passed grey R above its ``quantile`` (and above a
    quarter of its 99.9th percentile, for sparse rain) that are local maxima across the streak
    direction. Each centre is moved to the sub-pixel peak of a parabola
    through its three samples across the streak, and the high-passed R is sampled there (cubic
    spline) at whole-pixel offsets across the streak; the profile is the mean of these samples
    divided by their value at the centre.

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.
    angle : float, optional
        Streak angle in degrees; default the dominant orientation.
    half_width : int
        The profile covers offsets ``-half_width .. half_width`` pixels.
    quantile : float
        Centres lie above this quantile of the high-passed R, in ``(0, 1)``.
    highpass_sigma : float
        R minus its Gaussian blur of this sigma is analysed.

    Returns
    -------
    offsets : numpy.ndarray
        Shape ``(2 * half_width + 1,)``, pixels across the streak.
    profile : numpy.ndarray
        Same shape, 1 at offset 0.
    fwhm : float
        Full width at half maximum of the profile, pixels (``nan`` without streaks).

    Examples
    --------
    >>> import numpy as np
    >>> r = np.zeros((64, 64)); r[:, 8::16] = 1  # vertical lines one pixel wide
    >>> off, prof, fwhm = streak_profile(r, angle=0.0)
    >>> float(prof[6]), 0.8 < fwhm < 1.1  # about one pixel
    (1.0, True)
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    g = _highpass(_gray(rain), highpass_sigma)
    if angle is None:
        angle = dominant_orientation(rain)[0]
    th = np.radians(angle)
    dx, dy = np.cos(th), np.sin(th)  # across the streak, (x right, y down)
    offsets = np.arange(-half_width, half_width + 1, dtype=np.float64)
    cut = max(float(np.quantile(g, quantile)), 0.25 * float(np.quantile(g, 0.999)))
    ys, xs = np.nonzero(g > cut)
    if len(ys) == 0:
        return offsets, np.full(len(offsets), np.nan), float("nan")
    near = np.array([-1.0, 0.0, 1.0])  # the centre and its neighbours: enough to find peaks
    coords = [ys[None] + near[:, None] * dy, xs[None] + near[:, None] * dx]
    left, mid, right = ndimage.map_coordinates(
        g, [c_.ravel() for c_ in coords], order=3, mode="reflect").reshape(3, -1)
    c = half_width
    peak = (mid >= left) & (mid >= right) & (mid > 0)
    if not peak.any():
        return offsets, np.full(len(offsets), np.nan), float("nan")
    # sub-pixel centre (parabola through the three samples), so that streaks whose axis passes
    # between pixel centres are not averaged out of register (which would widen oblique ones)
    curv = left[peak] - 2 * mid[peak] + right[peak]
    shift = np.clip(0.5 * (left[peak] - right[peak]) / np.where(curv < 0, curv, -1.0), -0.5, 0.5)
    shift = np.where(curv < 0, shift, 0.0)
    pos = offsets[:, None] + shift[None]
    coords = [ys[peak][None] + pos * dy, xs[peak][None] + pos * dx]
    samples = ndimage.map_coordinates(g, [c_.ravel() for c_ in coords], order=3, mode="reflect")
    samples = samples.reshape(len(offsets), -1)
    profile = (samples / samples[c]).mean(axis=1)
    return offsets, profile, _fwhm(profile, c)


def _fwhm(profile: np.ndarray, centre: int) -> float:
    """Width at half maximum of a profile that is 1 at ``centre`` (linear interpolation)."""
    width = 0.0
    for step in (-1, 1):
        i = centre
        while 0 <= i + step < len(profile) and profile[i + step] > 0.5:
            i += step
        if not 0 <= i + step < len(profile):
            return float("nan")
        v0, v1 = profile[i], profile[i + step]
        width += abs(i - centre) + (v0 - 0.5) / (v0 - v1)
    return float(width)


def streak_segments(
    rain: Any, *, angle: float | None = None, threshold: float = 0.03, min_pixels: int = 4,
    highpass_sigma: float = 8.0,
) -> tuple[np.ndarray, float]:
    """Lengths of the separate streaks of R, and their number per megapixel.

    The high-passed grey R is cut at ``threshold``; each 8-connected component of at least
    ``min_pixels`` pixels that is longer along the streak direction than across it counts as one
    streak, of length its extent along that direction. Overlapping streaks merge into one
    component and very faint ones fall below the cut, so both numbers are estimates to compare
    between rain layers measured the same way, not counts of drops.

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.
    angle : float, optional
        Streak angle in degrees; default the dominant orientation.
    threshold : float
        Cut on the high-passed R (grey levels in [0, 1]; 0.03 is about 8 of 255).
    min_pixels : int
        Smaller components are noise (JPEG blocks, texture), not streaks.
    highpass_sigma : float
        R minus its Gaussian blur of this sigma is analysed.

    Returns
    -------
    lengths : numpy.ndarray
        Shape ``(n,)``, pixels, one per streak.
    per_megapixel : float
        ``n`` divided by the image area in megapixels.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.zeros((100, 100)); r[10:30, 20] = 1; r[50:90, 60] = 1
    >>> lengths, per_mp = streak_segments(r, angle=0.0)
    >>> sorted(lengths.tolist()), per_mp
    ([20.0, 40.0], 200.0)
    """
    g = _highpass(_gray(rain), highpass_sigma)
    if angle is None:
        angle = dominant_orientation(rain)[0]
    labels, n = ndimage.label(g > threshold, structure=np.ones((3, 3), dtype=bool))
    area_mp = g.size / 1e6
    if n == 0:
        return np.zeros(0), 0.0
    th = np.radians(angle)
    yy, xx = np.indices(g.shape, dtype=np.float64)
    along = xx * np.sin(th) - yy * np.cos(th)
    across = xx * np.cos(th) + yy * np.sin(th)
    index = np.arange(1, n + 1)
    count = ndimage.sum_labels(np.ones_like(g), labels, index)

    def extent(coord: np.ndarray) -> np.ndarray:
        hi = ndimage.maximum(coord, labels, index)
        lo = ndimage.minimum(coord, labels, index)
        return np.asarray(hi) - np.asarray(lo) + 1

    length, breadth = extent(along), extent(across)
    keep = (count >= min_pixels) & (length > breadth)
    return np.round(length[keep], 6), float(keep.sum() / area_mp)


def rain_colour(rain: Any) -> np.ndarray:
    """Per-channel mean of a colour rain layer ``R``: ``(mean R_r, mean R_g, mean R_b)``.

    Rain is close to neutral: the three means are close to each other.

    Parameters
    ----------
    rain : array or tensor
        ``(H, W, 3)`` numpy or ``(3, H, W)`` torch.

    Returns
    -------
    numpy.ndarray
        Shape ``(3,)``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> rain_colour(np.stack([np.full((4, 4), v) for v in (0.1, 0.2, 0.3)], axis=2)).round(2)
    array([0.1, 0.2, 0.3])
    """
    if isinstance(rain, torch.Tensor):
        r = rain.detach().cpu().double().numpy()
        if r.ndim != 3 or r.shape[0] != 3:
            raise ValueError(f"rain tensor must be (3, H, W) for its colour, got {tuple(r.shape)}")
        return r.mean(axis=(1, 2))
    r = np.asarray(rain, dtype=np.float64)
    if r.ndim != 3 or r.shape[2] != 3:
        raise ValueError(f"rain array must be (H, W, 3) for its colour, got {r.shape}")
    return r.mean(axis=(0, 1))


def intensity_histogram(
    rain: Any, bins: int = 60, value_range: tuple[float, float] = (-0.3, 0.6)
) -> tuple[np.ndarray, np.ndarray]:
    """Density histogram of grey R values.

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.
    bins : int
        Number of bins.
    value_range : tuple of float
        Range of R values; values outside are clipped into the end bins.

    Returns
    -------
    hist : numpy.ndarray
        Shape ``(bins,)``, fractions summing to 1.
    edges : numpy.ndarray
        Shape ``(bins + 1,)``.

    Examples
    --------
    >>> import numpy as np
    >>> h, e = intensity_histogram(np.zeros((8, 8)), bins=2, value_range=(-1, 1))
    >>> h.tolist()
    [0.0, 1.0]
    """
    g = np.clip(_gray(rain), value_range[0], value_range[1])
    hist, edges = np.histogram(g, bins=bins, range=value_range)
    return hist / max(hist.sum(), 1), edges


def low_frequency_share(rain: Any, sigma: float = 12.0) -> float:
    """Share of R's energy at low frequency (haze / veiling): ``||G_sigma * R||^2 / ||R||^2``.

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.
    sigma : float
        Gaussian sigma in pixels (reflect borders).

    Returns
    -------
    float
        In [0, 1]; 0 for thin streaks only, near 1 for a smooth veil. 0 for an all-zero R.

    Examples
    --------
    >>> import numpy as np
    >>> round(low_frequency_share(np.full((32, 32), 0.1)), 6)
    1.0
    """
    g = _gray(rain)
    total = float((g**2).sum())
    if total == 0:
        return 0.0
    return float((_blur(g, sigma) ** 2).sum() / total)


def rain_statistics(rain: Any) -> dict[str, float]:
    """Summary numbers of one rain layer (as used by ``benchmarks/rain_realism.py``).

    Parameters
    ----------
    rain : array or tensor
        See :func:`dominant_orientation`.

    Returns
    -------
    dict
        ``mean, std, p01, p50, p99, neg_frac`` (grey R values), ``lowfreq`` (sigma 12),
        ``angle, coherence`` (global structure tensor), ``width, length`` (pixels).

    Examples
    --------
    >>> import numpy as np
    >>> sorted(rain_statistics(np.random.default_rng(0).random((32, 32)) * 0.1))[:3]
    ['angle', 'coherence', 'length']
    """
    g = _gray(rain)
    ang, coh = dominant_orientation(g)
    width, length = streak_width_length(g, angle=ang)
    p01, p50, p99 = np.percentile(g, [1, 50, 99])
    return {
        "mean": float(g.mean()), "std": float(g.std()), "p01": float(p01), "p50": float(p50),
        "p99": float(p99), "neg_frac": float((g < 0).mean()), "lowfreq": low_frequency_share(g),
        "angle": ang, "coherence": coh, "width": float(width), "length": float(length),
    }
