"""Synthetic rain (``sdsen.rain``): batched, seeded streak synthesis, presets, rain statistics.

``rainy = clean + rain`` exactly; see :mod:`sdsen.rain.synth` for the streak model and the angle
convention (degrees, 0 = vertical, positive = top of the streak leans right).
"""

from .params import RainParams
from .presets import PRESETS, RainPreset, resolve_preset, sample_params
from .stats import (
    dominant_orientation,
    intensity_histogram,
    low_frequency_share,
    orientation_histogram,
    rain_colour,
    rain_statistics,
    streak_profile,
    streak_segments,
    streak_width_length,
)
from .synth import RainSample, streak_kernel, synthesize, synthesize_batch

__all__ = [
    "PRESETS",
    "RainParams",
    "RainPreset",
    "RainSample",
    "dominant_orientation",
    "intensity_histogram",
    "low_frequency_share",
    "orientation_histogram",
    "rain_colour",
    "rain_statistics",
    "resolve_preset",
    "sample_params",
    "streak_kernel",
    "streak_profile",
    "streak_segments",
    "streak_width_length",
    "synthesize",
    "synthesize_batch",
]
