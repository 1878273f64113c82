"""The parameters of one synthetic rain layer: :class:`RainParams` (validated, JSON-able)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RainParams"]

_BLENDS = ("screen", "additive")


@dataclass(frozen=True)
class RainParams:
    """Everything needed to reproduce one synthetic rain layer (JSON-serialisable via ``asdict``).

    Parameters
    ----------
    angle : float
        Streak angle in degrees; 0 = vertical, positive = top of the streak leans right
        (clockwise on screen). Any real value; only ``angle mod 180`` matters.
    length : float
        Streak length in pixels of the first (nearest) layer, ``>= 1``.
    width : float
        Streak full width at half maximum in pixels, ``>= 0.5``.
    density : float
        Mean number of drops per pixel in the first layer, ``>= 0`` (e.g. 0.002).
    intensity : float
        Peak brightness of a streak after levelling, in ``[0, 1]``.
    layers : int
        Number of streak layers, ``>= 1``; ``> 1`` is the heavy-rain mode.
    haze : float
        Mean veiling (transmission loss toward the atmospheric light), in ``[0, 1]``; 0 = none.
    seed : int
        Seed of every random draw for this sample, ``>= 0``.
    blend : str
        ``"screen"`` (default) or ``"additive"``.
    threshold : float
        Level cut applied to the summed streak field, in ``[0, 1)``.
    atmosphere : float
        Grey atmospheric light ``A`` the haze blends toward, in ``[0, 1]``.
    layer_angle_spread : float
        Half-range in degrees of the angle offset of layers ``k >= 1``, ``>= 0``.
    layer_scale : float
        Per-layer scale factor of length / width (``(0, 1]``) for layers ``k >= 1``.
    taper : float
        Share of each half of a streak over which its brightness falls linearly to 0 at the tip,
        in ``[0, 1]``: 0 = a box with soft, one-pixel ends; 1 = brightest at the centre only.
    atmosphere_relative : bool
        If true, ``A = clip(mean(B) + atmosphere, 0, 1)`` with ``mean(B)`` the image's mean grey
        level and ``atmosphere`` in ``[-1, 1]``: the airlight follows the scene's exposure, so
        one preset gives the same haze statistics on dark and bright photos.

    Examples
    --------
    >>> from dataclasses import asdict
    >>> p = RainParams(angle=15, length=20, density=0.003, seed=7)
    >>> asdict(p)["angle"], p.layers
    (15.0, 1)
    """

    angle: float = 0.0
    length: float = 20.0
    width: float = 1.0
    density: float = 0.003
    intensity: float = 0.6
    layers: int = 1
    haze: float = 0.0
    seed: int = 0
    blend: str = "screen"
    threshold: float = 0.0
    atmosphere: float = 0.8
    layer_angle_spread: float = 15.0
    layer_scale: float = 0.6
    atmosphere_relative: bool = False
    taper: float = 0.0

    def __post_init__(self) -> None:
        floats = ("angle", "length", "width", "density", "intensity", "haze", "threshold",
                  "atmosphere", "layer_angle_spread", "layer_scale", "taper")
        for name in floats:
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"RainParams.{name} must be a real number, got {value!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"RainParams.{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        for name in ("layers", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"RainParams.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        _check(self.length >= 1, "length", self.length, "a streak length >= 1 pixel")
        _check(self.width >= 0.5, "width", self.width, "a streak width >= 0.5 pixel")
        _check(self.density >= 0, "density", self.density, "a drop density >= 0 (e.g. 0.002)")
        _check(0 <= self.intensity <= 1, "intensity", self.intensity, "a value in [0, 1]")
        _check(self.layers >= 1, "layers", self.layers, "an integer >= 1")
        _check(0 <= self.haze <= 1, "haze", self.haze, "a value in [0, 1] (0 = no haze)")
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(0 <= self.threshold < 1, "threshold", self.threshold, "a value in [0, 1)")
        object.__setattr__(self, "atmosphere_relative", bool(self.atmosphere_relative))
        if self.atmosphere_relative:
            _check(-1 <= self.atmosphere <= 1, "atmosphere", self.atmosphere,
                   "an offset in [-1, 1] with atmosphere_relative=True")
        else:
            _check(0 <= self.atmosphere <= 1, "atmosphere", self.atmosphere, "a value in [0, 1]")
        _check(self.layer_angle_spread >= 0, "layer_angle_spread", self.layer_angle_spread,
               "a value >= 0 degrees")
        _check(0 < self.layer_scale <= 1, "layer_scale", self.layer_scale, "a value in (0, 1]")
        _check(0 <= self.taper <= 1, "taper", self.taper, "a value in [0, 1] (0 = no taper)")
        if self.blend not in _BLENDS:
            raise ValueError(f"RainParams.blend must be one of {_BLENDS}, got {self.blend!r}")


def _check(ok: bool, name: str, value: Any, fix: str) -> None:
    if not ok:
        raise ValueError(f"RainParams.{name}={value!r} is invalid: use {fix}.")
