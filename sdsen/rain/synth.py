"""Batched, seeded rain-streak synthesis in torch (CPU or GPU).

Streak model (per image, per layer ``k``):

1. **Impulses**: a Poisson number of drops (mean ``density_k * area``) at uniform random
   positions, each with a random amplitude in ``[0.5, 1] * a_k``.
2. **Anisotropic motion blur** of the impulse field with a streak kernel: a soft-ended box of
   length ``length_k`` along the streak direction (with ``taper``, a brightness that falls
   linearly to 0 at both tips) times a Gaussian of full width at half maximum ``width_k`` across
   it (peak 1). The convolution is done by FFT on a padded canvas, so its cost
   does not depend on the streak length.
3. **Level / threshold**: ``S = intensity * clip((sum_k S_k - threshold) / (1 - threshold), 0, 1)``.
4. **Blend** over the clean image ``B``: ``screen`` ``1 - (1 - B)(1 - S)`` or ``additive``
   ``B + S``.
5. **Haze** (veiling): ``O = (1 - t) * O + t * A`` with a smooth, low-frequency transmission loss
   ``t(x) = haze * (1 + 0.4 (2 n(x) - 1))`` (``n`` a bicubic-upsampled coarse noise in [0, 1]) and
   a grey atmospheric light ``A = atmosphere`` (or ``mean(B) + atmosphere`` with
   ``atmosphere_relative``). Haze brightens dark regions and can darken regions
   brighter than ``A``, as in the real rendered rain of the validation set.
6. ``O = clip(O, 0, 1)`` and ``R = O - B`` (computed once, so ``O - B == R`` bit-exactly).

Heavy-rain mode (``layers > 1``): layer ``k >= 1`` is drawn at angle
``angle + layer_angle_spread * u_k`` (``u_k`` uniform in [-1, 1]), with length and width scaled by
``layer_scale ** k`` (width floored at 0.5 px), density divided by ``layer_scale ** k`` and
amplitude ``a_k = layer_scale ** (k / 2)``: more, smaller, fainter and differently oriented
streaks, in the spirit of Rain100H.

Angle convention
----------------
Degrees; ``0`` is a vertical streak; **positive angles lean the top of the streak to the right**
(clockwise as seen on screen, image rows growing downwards). ``+90`` and ``-90`` are both
horizontal. In image coordinates ``(x right, y down)`` the streak direction is
``(sin(angle), -cos(angle))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .params import RainParams
from .presets import as_rng, sample_params

__all__ = ["RainParams", "RainSample", "streak_kernel", "synthesize", "synthesize_batch"]

_HAZE_VARIATION = 0.4
_HAZE_GRID = 4  # coarse haze noise: about 4 cells along the shorter image side


@dataclass
class RainSample:
    """One synthetic pair: ``rainy = clean + rain`` exactly, with the parameters used.

    Attributes
    ----------
    rainy, clean, rain
        Same kind as the input of :func:`synthesize`: torch ``(3, H, W)`` float tensors, or numpy
        ``(H, W, 3)`` arrays (float32; or uint8 rainy / clean with int16 rain for uint8 input).
    params : RainParams
        Parameters that reproduce the sample.
    """

    rainy: Any
    clean: Any
    rain: Any
    params: RainParams = field(default_factory=RainParams)


# --------------------------------------------------------------------------------------------
# kernels and per-sample random draws


def streak_kernel(
    angle: torch.Tensor | float,
    length: torch.Tensor | float,
    width: torch.Tensor | float,
    size: int,
    *,
    taper: torch.Tensor | float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Streak (motion-blur) kernels of peak 1, centred in a ``size x size`` grid.

    Parameters
    ----------
    angle, length, width
        Scalars or tensors of shape ``(N,)``: angle in degrees (see module docstring), length and
        FWHM width in pixels.
    size : int
        Odd kernel side.
    taper
        Scalar or ``(N,)``: share of each half of the streak over which the brightness falls
        linearly to 0 at the tip (:class:`~sdsen.rain.RainParams`); 0 leaves the box as it is.
    dtype, device
        Of the result.

    Returns
    -------
    torch.Tensor
        Shape ``(N, size, size)`` (``N = 1`` for scalars).

    Examples
    --------
    >>> k = streak_kernel(0.0, 9.0, 4.0, 11)
    >>> k.shape, round(float(k[0, 5, 5]), 2), float(k[0, 0, 5])  # vertical: 0 past its end
    (torch.Size([1, 11, 11]), 0.99, 0.0)
    >>> t = streak_kernel(0.0, 9.0, 4.0, 11, taper=1.0)  # tapered: dimmer towards both tips
    >>> [round(float(v), 2) for v in t[0, 1:6, 5]]
    [0.2, 0.39, 0.59, 0.79, 0.99]
    """
    if size % 2 != 1:
        raise ValueError(f"size must be odd, got {size}")
    kw = {"dtype": dtype, "device": device}
    angle = torch.as_tensor(angle, **kw).reshape(-1, 1, 1)
    length = torch.as_tensor(length, **kw).reshape(-1, 1, 1)
    width = torch.as_tensor(width, **kw).reshape(-1, 1, 1)
    c = torch.arange(size, **kw) - size // 2
    y, x = c.view(-1, 1), c.view(1, -1)
    th = torch.deg2rad(angle)
    # along the streak: direction (sin, -cos) in (x right, y down); across: (cos, sin)
    u = x * torch.sin(th) - y * torch.cos(th)
    v = x * torch.cos(th) + y * torch.sin(th)
    along = (length / 2 + 0.5 - u.abs()).clamp(0, 1)
    taper = torch.as_tensor(taper, **kw).reshape(-1, 1, 1)
    if bool((taper > 0).any()):  # linear fall to the tip over `taper` of each half-length
        ramp = (length / 2 + 0.5 - u.abs()) / (taper * (length / 2 + 0.5)).clamp(min=1e-6)
        along = along * ramp.clamp(0, 1)
    # Gaussian cross-profile of FWHM `width`, integrated over the pixel footprint (variance + 1/12)
    # so thin streaks do not alias into dotted lines; the peak is 1 for wide streaks
    sigma = width / 2.3548
    sig_eff = torch.sqrt(sigma**2 + 1 / 12)
    across = (sigma / sig_eff) * torch.exp(-0.5 * (v / sig_eff) ** 2) * (v.abs() <= 2 * width + 1)
    return along * across


def _fast_len(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT size)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _layer_specs(p: RainParams, g: torch.Generator) -> list[tuple[float, ...]]:
    """(angle, length, width, density, amplitude, taper) per layer; draws the angle offsets
    from g."""
    specs = [(p.angle, p.length, p.width, p.density, 1.0, p.taper)]
    if p.layers > 1:
        u = torch.rand(p.layers - 1, generator=g, dtype=torch.float64) * 2 - 1
        for k in range(1, p.layers):
            s = p.layer_scale**k
            specs.append((p.angle + p.layer_angle_spread * float(u[k - 1]),
                          max(1.0, p.length * s), max(0.5, p.width * s),
                          p.density / s, s**0.5, p.taper))
    return specs


def _as_params_list(params: RainParams | Sequence[RainParams], n: int) -> list[RainParams]:
    if isinstance(params, RainParams):
        return [params] * n
    params = list(params)
    if len(params) != n or not all(isinstance(p, RainParams) for p in params):
        raise ValueError(
            f"params must be one RainParams (shared) or a sequence of {n} RainParams (one per "
            f"image), got {len(params)} items; or pass a preset name / RainPreset with a generator."
        )
    return params


def _check_batch(clean: torch.Tensor) -> None:
    if not isinstance(clean, torch.Tensor):
        raise TypeError(f"clean must be a torch.Tensor of shape (B, 3, H, W), got {type(clean)}")
    if clean.ndim != 4 or clean.shape[1] != 3:
        raise ValueError(
            f"clean must have shape (B, 3, H, W) (RGB, channels first), got {tuple(clean.shape)}; "
            "for one image use synthesize() or clean[None]."
        )
    if not clean.is_floating_point():
        raise ValueError(f"clean must be a float tensor in [0, 1], got dtype {clean.dtype}; "
                         "convert with clean.float() / 255.")


def _check_range(clean: torch.Tensor) -> None:
    if clean.is_floating_point() and clean.numel():
        lo, hi = torch.aminmax(clean)
        if lo < 0 or hi > 1:
            raise ValueError(f"clean values must lie in [0, 1], got [{float(lo):.3g}, "
                             f"{float(hi):.3g}]; divide 8-bit data by 255.")


# --------------------------------------------------------------------------------------------
# batched core


def synthesize_batch(
    clean: torch.Tensor,
    params: RainParams | Sequence[RainParams] | str | Any,
    generator: torch.Generator | np.random.Generator | int | None = None,
    *,
    return_params: bool = False,
) -> tuple[torch.Tensor, ...] | tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[RainParams]]:
    """Add synthetic rain to a batch of clean images.

    Parameters
    ----------
    clean : torch.Tensor
        Shape ``(B, 3, H, W)``, float, values in [0, 1] (not checked here, for speed;
        :func:`synthesize` checks), on any device (the result stays there).
    params : RainParams or sequence of RainParams or str or RainPreset
        One ``RainParams`` shared by every image (same seed, hence the same streak field on every
        image), one per image, or a preset (name or :class:`~sdsen.rain.RainPreset`) from which
        each image's parameters are drawn with ``generator``.
    generator : torch.Generator or numpy.random.Generator or int, optional
        Only used to sample parameters from a preset. The streaks themselves are drawn from
        ``params.seed`` alone (CPU generator): the same seed gives the same drops whatever the
        batch, the position in it, the device or its random state. Repeating a call gives
        bit-identical output (also on CUDA: no atomics); the same sample in another batch, or on
        another device, agrees to float rounding (about 1e-6), as the FFT size follows the
        batch's longest streak.
    return_params : bool
        Also return the list of per-image ``RainParams``.

    Returns
    -------
    rainy, clean, rain : torch.Tensor
        Each ``(B, 3, H, W)``, dtype and device of ``clean``; ``rainy`` in [0, 1] and
        ``rainy - clean == rain`` exactly. With ``return_params`` a fourth item, the params list.

    Examples
    --------
    >>> import torch
    >>> clean = torch.full((2, 3, 32, 48), 0.3)
    >>> ps = [RainParams(angle=a, length=12, density=0.01, seed=i) for i, a in enumerate([0, 30])]
    >>> rainy, b, rain = synthesize_batch(clean, ps)
    >>> rainy.shape, bool(torch.equal(rainy - b, rain)), bool(rainy.max() <= 1)
    (torch.Size([2, 3, 32, 48]), True, True)
    """
    _check_batch(clean)
    n, _, h, w = clean.shape
    if isinstance(params, RainParams) or (
        isinstance(params, Sequence) and not isinstance(params, str)
    ):
        plist = _as_params_list(params, n)
    else:
        rng = as_rng(generator)  # params: a preset name or RainPreset
        plist = [sample_params(params, rng) for _ in range(n)]
    dev, dt = clean.device, clean.dtype
    if n == 0:
        out = (clean.clone(), clean, clean.clone())
        return (*out, plist) if return_params else out

    # 1. per-layer specs and sparse impulses, drawn on CPU from each sample's own seed
    layer_sample, specs, gens, hazes = [], [], [], []
    for i, p in enumerate(plist):
        g = torch.Generator().manual_seed(p.seed)
        for spec in _layer_specs(p, g):
            layer_sample.append(i)
            specs.append(spec)
            gens.append(g)
        hazes.append(g)
    # each layer draws its drops over the image plus its own margin m (its streak reach), so
    # the draws depend on the sample alone; the batch canvas is padded by the largest margin
    margins = [math.ceil(s[1] / 2 + 2 * s[2] + 2) for s in specs]
    pad = max(margins)
    hp, wp = _fast_len(h + 2 * pad), _fast_len(w + 2 * pad)
    area = hp * wp
    imp_idx, imp_val = [], []
    for j, (g, spec, m) in enumerate(zip(gens, specs, margins)):
        hm, wm = h + 2 * m, w + 2 * m
        k = int(torch.poisson(torch.tensor(spec[3] * hm * wm, dtype=torch.float64), generator=g))
        pos = torch.randint(0, hm * wm, (k,), generator=g)
        yy, xx = pos // wm + (pad - m), pos % wm + (pad - m)
        imp_idx.append(yy * wp + xx + j * area)
        imp_val.append((0.5 + 0.5 * torch.rand(k, generator=g)) * spec[4])
    idx, val = torch.cat(imp_idx), torch.cat(imp_val).to(dt)
    # merge coinciding drops on the CPU (device atomics would make the sums order-dependent),
    # then one plain scatter of unique indices on the device: the same code on CPU and GPU
    idx, inv = torch.unique(idx, return_inverse=True)
    val = torch.zeros(len(idx), dtype=dt).index_add_(0, inv, val)
    flat = torch.zeros(len(specs) * area, dtype=dt, device=dev)
    flat[idx.to(dev)] = val.to(dev)
    impulses = flat.view(len(specs), hp, wp)

    # 2. streak kernels zero-padded at the canvas origin, FFT convolution: the output at canvas
    #    index q + pad is the kernel-centred convolution at q, so crop from 2 * pad
    ksize = 2 * pad + 1
    ang, ln, wd, tp = (torch.tensor([s[i] for s in specs], dtype=torch.float64)
                       for i in (0, 1, 2, 5))
    kern = streak_kernel(ang, ln, wd, ksize, taper=tp, dtype=torch.float64).to(dev, dt)
    spec_f = torch.fft.rfft2(impulses)
    spec_f *= torch.fft.rfft2(kern, s=(hp, wp))
    if len(specs) > n:  # sum the layers of each sample in a fixed order (deterministic on GPU)
        layer_pos = [0] * len(specs)
        for j in range(1, len(specs)):
            layer_pos[j] = layer_pos[j - 1] + 1 if layer_sample[j] == layer_sample[j - 1] else 0
        stacked = torch.zeros((n, max(layer_pos) + 1) + spec_f.shape[1:], dtype=spec_f.dtype,
                              device=dev)
        stacked[torch.tensor(layer_sample, device=dev), torch.tensor(layer_pos, device=dev)] = spec_f
        summed = stacked.sum(1)
    else:
        summed = spec_f
    field_ = torch.fft.irfft2(summed, s=(hp, wp))[:, 2 * pad:2 * pad + h, 2 * pad:2 * pad + w]

    # 3. level / threshold
    thr = torch.tensor([p.threshold for p in plist], dtype=dt, device=dev).view(n, 1, 1)
    inten = torch.tensor([p.intensity for p in plist], dtype=dt, device=dev).view(n, 1, 1)
    streaks = field_.sub_(thr).mul_(inten / (1 - thr)).clamp_(min=0).minimum(inten).unsqueeze(1)

    # 4. blend: screen B + S (1 - B), or additive B + S
    blends = {p.blend for p in plist}
    if blends == {"screen"}:
        rainy = torch.addcmul(clean, streaks, 1 - clean)
    elif blends == {"additive"}:
        rainy = clean + streaks
    else:
        screen = torch.tensor([p.blend == "screen" for p in plist], device=dev).view(n, 1, 1, 1)
        rainy = torch.where(screen, torch.addcmul(clean, streaks, 1 - clean), clean + streaks)

    # 5. haze: O + t (A - O), t smooth (bicubic coarse noise, then bilinear to full size)
    haze = [p.haze for p in plist]
    if any(v > 0 for v in haze):
        gh = max(2, round(_HAZE_GRID * h / min(h, w)))
        gw = max(2, round(_HAZE_GRID * w / min(h, w)))
        coarse = torch.stack([torch.rand(1, gh, gw, generator=g, dtype=torch.float64)
                              for g in hazes]).to(dev, dt)
        noise = F.interpolate(coarse, size=(-(-h // 8), -(-w // 8)), mode="bicubic",
                              align_corners=True)
        noise = F.interpolate(noise, size=(h, w), mode="bilinear", align_corners=True)
        hz = torch.tensor(haze, dtype=dt, device=dev).view(n, 1, 1, 1)
        t = noise.clamp_(0, 1).mul_(2 * _HAZE_VARIATION).add_(1 - _HAZE_VARIATION).mul_(hz)
        atm = torch.tensor([p.atmosphere for p in plist], dtype=dt, device=dev).view(n, 1, 1, 1)
        rel = [p.atmosphere_relative for p in plist]
        if any(rel):
            mask = torch.tensor(rel, device=dev).view(n, 1, 1, 1)
            atm = torch.where(mask, (clean.mean(dim=(1, 2, 3), keepdim=True) + atm).clamp(0, 1),
                              atm)
        rainy = torch.addcmul(rainy, t, atm - rainy)

    # 6. exact residual
    rainy = rainy.clamp_(0, 1)
    rain = rainy - clean
    out = (rainy, clean, rain)
    return (*out, plist) if return_params else out


# --------------------------------------------------------------------------------------------
# single image


def synthesize(
    clean: torch.Tensor | np.ndarray,
    *,
    angle: float | None = None,
    length: float | None = None,
    width: float | None = None,
    density: float | None = None,
    intensity: float | None = None,
    layers: int | None = None,
    seed: int = 0,
    haze: float | None = None,
    preset: str | Any | None = None,
    **extra: Any,
) -> RainSample:
    """Add synthetic rain to one image.

    Parameters
    ----------
    clean : torch.Tensor or numpy.ndarray
        A torch ``(3, H, W)`` float tensor in [0, 1], or a numpy ``(H, W, 3)`` array, uint8 or
        float in [0, 1].
    angle, length, width, density, intensity, layers, haze
        See :class:`RainParams` (angle: degrees, 0 = vertical, positive = top leans right).
        Unset values come from ``preset`` when given, else from the ``RainParams`` defaults.
    seed : int
        Seed of the streaks (and of the preset draw when ``preset`` is given).
    preset : str or RainPreset, optional
        Draw every unset parameter from this preset (``sdsen.rain.PRESETS``), seeded by ``seed``.
    **extra
        Other :class:`RainParams` fields (``blend``, ``threshold``, ``atmosphere``, ...).

    Returns
    -------
    RainSample
        ``rainy``, ``clean``, ``rain`` of the input's kind (torch ``(3, H, W)`` with the input's
        dtype; numpy ``(H, W, 3)``: float32 for float input, uint8 ``rainy`` / ``clean`` and int16
        ``rain`` for uint8 input), with ``rainy - clean == rain`` exactly, and ``params``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((40, 60, 3), 90, np.uint8)
    >>> s = synthesize(img, angle=-20, length=15, density=0.01, seed=3)
    >>> s.rainy.dtype, s.rain.dtype, bool((s.rainy.astype(np.int16) - s.clean == s.rain).all())
    (dtype('uint8'), dtype('int16'), True)
    >>> synthesize(img, preset="heavy", seed=3).params.layers >= 1
    True
    """
    named = {"angle": angle, "length": length, "width": width, "density": density,
             "intensity": intensity, "layers": layers, "haze": haze}
    given = {k: v for k, v in named.items() if v is not None}
    unknown = set(extra) - set(RainParams.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown rain parameter(s) {sorted(unknown)}; valid: "
                         f"{sorted(RainParams.__dataclass_fields__)}")
    given.update(extra)
    if preset is not None:
        base = sample_params(preset, np.random.default_rng(seed))
        params = replace(base, seed=int(seed), **given)
    else:
        params = RainParams(seed=seed, **given)

    if isinstance(clean, torch.Tensor):
        _check_range(clean)
        if clean.ndim != 3 or clean.shape[0] != 3:
            raise ValueError(f"clean tensor must have shape (3, H, W), got {tuple(clean.shape)}; "
                             "for batches use synthesize_batch().")
        rainy, b, rain = synthesize_batch(clean[None], params)
        return RainSample(rainy[0], b[0], rain[0], params)
    if not isinstance(clean, np.ndarray):
        raise TypeError(f"clean must be a torch.Tensor (3, H, W) or numpy array (H, W, 3), got "
                         f"{type(clean)}")
    if clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"clean array must have shape (H, W, 3) (RGB, channels last), got "
                         f"{clean.shape}; promote grayscale with np.repeat(x[..., None], 3, 2).")
    if clean.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(clean)).permute(2, 0, 1).float() / 255
        rainy, _, _ = synthesize_batch(t[None], params)
        o = (rainy[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        return RainSample(o, clean, o.astype(np.int16) - clean, params)
    if not np.issubdtype(clean.dtype, np.floating):
        raise ValueError(f"clean array must be uint8 or float in [0, 1], got dtype {clean.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)).permute(2, 0, 1)
    _check_range(t)
    rainy, b, rain = synthesize_batch(t[None], params)
    rainy, b, rain = (x[0].permute(1, 2, 0).numpy().copy() for x in (rainy, b, rain))
    return RainSample(rainy, b, rain, params)
