"""Named rain presets: ranges of :class:`~sdsen.rain.RainParams`, and sampling from them.

Every current preset draws the streak shape fitted to the rain layers of the 600
``rain800_train`` training pairs: thin (1.4-2.5 px), tapered, 10-40 px long, in up to three depth
layers. ``rain800`` is that fit (one direction per image within ±22°, a light veil). ``light`` and
``heavy`` are sparser and denser rain of the same family; ``heavy-haze`` is the hazy rendered-rain
family (near-vertical streaks behind a veil that lifts toward a bright airlight, as in
RainCityscapes, which is only checked against, never fitted on). ``mixed`` draws one of the four
per sample. The measurements, the fit and what still differs: ``benchmarks/README.md``,
*Realism* (``benchmarks/rain_realism.py``).

The ``v1-*`` presets are the first calibration (wide, untapered streaks matched to
RainCityscapes' summary statistics), kept so that the models trained on ``v1-mixed`` can be
retrained exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from .params import RainParams

__all__ = ["PRESETS", "RainPreset", "as_rng", "resolve_preset", "sample_params"]

Range = tuple[float, float]


@dataclass(frozen=True)
class RainPreset:
    """Ranges from which :func:`sample_params` draws a :class:`~sdsen.rain.RainParams`.

    Each range is ``(low, high)``, drawn uniformly (``density`` log-uniformly, ``layers`` as an
    integer in ``[low, high]`` inclusive). ``blend`` is a tuple of choices. A non-empty
    ``mixture`` of ``(preset name, weight)`` pairs makes this preset a mixture: a component is
    picked with probability proportional to its weight and sampled instead.

    Examples
    --------
    >>> p = RainPreset("demo", angle=(-10, 10), length=(10, 20))
    >>> p.angle
    (-10, 10)
    """

    name: str
    angle: Range = (-30.0, 30.0)
    length: Range = (10.0, 30.0)
    width: Range = (1.0, 2.0)
    density: Range = (0.001, 0.004)
    intensity: Range = (0.4, 0.8)
    layers: tuple[int, int] = (1, 1)
    haze: Range = (0.0, 0.0)
    threshold: Range = (0.0, 0.0)
    atmosphere: Range = (0.8, 0.8)
    layer_angle_spread: Range = (10.0, 20.0)
    layer_scale: Range = (0.6, 0.6)
    blend: tuple[str, ...] = ("screen",)
    atmosphere_relative: bool = False
    taper: Range = (0.0, 0.0)
    mixture: tuple[tuple[str, float], ...] = ()


def _p(name: str, **kw: Any) -> RainPreset:
    return RainPreset(name, **kw)


#: The streak shape fitted to the rain800 training layers, shared by every current preset.
_RAIN800_STREAKS: dict[str, Any] = {
    "length": (10.0, 40.0), "width": (1.4, 2.5), "threshold": (0.1, 0.3),
    "layer_angle_spread": (1.3, 9.0), "layer_scale": (0.45, 0.72), "taper": (0.14, 0.81),
    "atmosphere_relative": True}

PRESETS: dict[str, RainPreset] = {
    # before calibration: a Rain100H-style guess, thin bright streaks, no haze (for the ablation)
    "uncalibrated": _p("uncalibrated", angle=(-30, 30), length=(15, 40), width=(1.0, 2.5),
                       density=(0.002, 0.008), intensity=(0.5, 0.9), layers=(1, 3),
                       threshold=(0.0, 0.2)),
    # fitted to the rain layers of the 600 rain800_train training pairs (benchmarks/README.md,
    # *Realism*): thin, tapered, dense streaks in up to three depth layers, one direction per
    # image within +-22 deg, a light veil that darkens bright regions as often as it lifts dark ones
    "rain800": _p("rain800", angle=(-22, 22), density=(0.003, 0.01), intensity=(0.3, 0.6),
                  layers=(1, 3), haze=(0.02, 0.15), atmosphere=(-0.2, 0.05), **_RAIN800_STREAKS),
    # the same streaks, sparser and fainter / denser with more layers
    "light": _p("light", angle=(-15, 15), density=(0.001, 0.003), intensity=(0.2, 0.45),
                layers=(1, 2), haze=(0.0, 0.05), atmosphere=(-0.1, 0.1), **_RAIN800_STREAKS),
    "heavy": _p("heavy", angle=(-22, 22), density=(0.005, 0.012), intensity=(0.3, 0.5),
                layers=(2, 3), haze=(0.05, 0.15), atmosphere=(-0.2, 0.05), **_RAIN800_STREAKS),
    # hazy rendered rain: near-vertical streaks behind a veil toward an airlight above the mean
    "heavy-haze": _p("heavy-haze", angle=(-10, 10), density=(0.005, 0.012), intensity=(0.3, 0.5),
                     layers=(2, 3), haze=(0.2, 0.45), atmosphere=(0.0, 0.2), **_RAIN800_STREAKS),
    "mixed": _p("mixed", mixture=(("rain800", 1.0), ("light", 1.0), ("heavy", 1.0),
                                  ("heavy-haze", 1.0))),
    # the first calibration, on the summary statistics of raincityscapes_test100: wide, untapered
    "v1-light": _p("v1-light", angle=(-10, 10), length=(8, 20), width=(1.5, 4.0),
                   density=(0.0004, 0.0012), intensity=(0.15, 0.35), layers=(1, 1),
                   haze=(0.0, 0.05), atmosphere=(0.0, 0.2), atmosphere_relative=True),
    "v1-heavy": _p("v1-heavy", angle=(-4, 4), length=(10, 24), width=(2.0, 5.5),
                   density=(0.001, 0.003), intensity=(0.2, 0.5), layers=(1, 2),
                   haze=(0.0, 0.1), atmosphere=(0.0, 0.2), atmosphere_relative=True,
                   layer_angle_spread=(3, 8)),
    "v1-heavy-haze": _p("v1-heavy-haze", angle=(-4, 4), length=(10, 24), width=(2.0, 5.5),
                        density=(0.001, 0.003), intensity=(0.2, 0.5), layers=(1, 2),
                        haze=(0.2, 0.5), atmosphere=(0.0, 0.2), atmosphere_relative=True,
                        layer_angle_spread=(3, 8)),
    "v1-mixed": _p("v1-mixed", mixture=(("v1-light", 1.0), ("v1-heavy", 1.0),
                                        ("v1-heavy-haze", 2.0))),
}


def as_rng(generator_or_rng: Any) -> np.random.Generator:
    """A NumPy generator from a NumPy or torch generator, a ``random.Random``, a seed or None
    (a torch / Python generator is advanced by one draw, its seed for the NumPy one).

    >>> int(as_rng(3).integers(100)) == int(as_rng(3).integers(100))
    True
    """
    g = generator_or_rng
    if isinstance(g, np.random.Generator):
        return g
    if isinstance(g, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**63 - 1, (1,), generator=g)))
    if isinstance(g, random.Random):
        return np.random.default_rng(g.getrandbits(63))
    if g is None or isinstance(g, (int, np.integer)):
        return np.random.default_rng(g)
    raise ValueError("generator_or_rng must be a numpy Generator, torch.Generator, random.Random, "
                     f"int seed or None; got {type(g)}")


def resolve_preset(preset: str | RainPreset) -> RainPreset:
    """The :class:`RainPreset` named ``preset`` (a RainPreset passes through), or a ValueError."""
    if isinstance(preset, RainPreset):
        return preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    raise ValueError(f"unknown rain preset {preset!r}; valid presets: {sorted(PRESETS)} "
                     "(or pass a RainPreset).")


def sample_params(
    preset: str | RainPreset,
    generator_or_rng: np.random.Generator | torch.Generator | random.Random | int | None = None,
    angle_range: tuple[float, float] | None = None,
) -> RainParams:
    """Draw one :class:`~sdsen.rain.RainParams` from a preset's ranges.

    Parameters
    ----------
    preset : str or RainPreset
        A name in ``PRESETS`` or a :class:`RainPreset`.
    generator_or_rng : numpy.random.Generator or torch.Generator or random.Random or int, optional
        Source of randomness (an int is a seed; ``None`` is fresh entropy). The drawn ``seed``
        field comes from it too, so the result is reproducible from it.
    angle_range : tuple of float, optional
        ``(low, high)`` degrees overriding the preset's angle range (e.g. ``(0, 0)`` for
        vertical rain only, or ``(-90, 90)`` for any orientation).

    Returns
    -------
    RainParams

    Examples
    --------
    >>> p = sample_params("heavy", 0, angle_range=(10, 10))
    >>> p.angle, 1 <= p.layers <= 2
    (10.0, True)
    """
    pr = resolve_preset(preset)
    rng = as_rng(generator_or_rng)
    if pr.mixture:
        names = [m[0] for m in pr.mixture]
        w = np.asarray([m[1] for m in pr.mixture], dtype=float)
        pick = names[int(rng.choice(len(names), p=w / w.sum()))]
        return sample_params(pick, rng, angle_range)
    if angle_range is not None:
        lo, hi = (float(a) for a in angle_range)
        if lo > hi:
            raise ValueError(f"angle_range must be (low, high) with low <= high, got {angle_range}")
    else:
        lo, hi = pr.angle
    out: dict[str, Any] = {"angle": float(rng.uniform(lo, hi))}
    for f in fields(RainParams):
        if f.name in ("angle", "seed", "blend", "layers", "density", "atmosphere_relative",
                      "taper"):
            continue
        a, b = getattr(pr, f.name)
        out[f.name] = float(rng.uniform(a, b))
    d0, d1 = pr.density
    out["density"] = float(np.exp(rng.uniform(np.log(d0), np.log(d1)))) if d0 > 0 else float(
        rng.uniform(d0, d1))
    out["density"] = min(max(out["density"], d0), d1)
    out["layers"] = int(rng.integers(pr.layers[0], pr.layers[1] + 1))
    out["blend"] = str(pr.blend[int(rng.integers(len(pr.blend)))])
    out["seed"] = int(rng.integers(0, 2**31 - 1))
    out["atmosphere_relative"] = pr.atmosphere_relative
    if pr.taper != (0.0, 0.0):  # drawn last: presets without a taper keep their random stream
        out["taper"] = float(rng.uniform(*pr.taper))
    return RainParams(**out)
