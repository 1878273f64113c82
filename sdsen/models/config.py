"""The model configuration, :class:`ModelConfig`: one dataclass, JSON-serialisable, validated."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelConfig"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "arch": ("sdsen", "dsen"),
    "group": ("p4", "p4m", "z2"),
    "decoder": ("official", "equivariant"),
}
_GROUP_ORDER = {"z2": 1, "p4": 4, "p4m": 8}


@dataclass
class ModelConfig:
    """Configuration of a DSEN / SDSEN network; the defaults are the official SDSEN.

    Parameters
    ----------
    channels
        Feature channels ``C`` of the group feature maps ``(B, C, G, H, W)`` (official: 10).
    stages
        Number of stages ``T`` (official SDSEN: 8). Weights are shared across stages.
    blocks
        Residual blocks per stage (official: ``depth - 3 = 4``).
    kernel_size
        Odd spatial size of every non-pointwise convolution (official: 5, padding ``k // 2``).
    group
        ``'p4'`` (rotations by 90°, the official), ``'p4m'`` (rotations and mirrors) or ``'z2'``
        (plain ``Conv2d``, the parameter-matched CNN baseline).
    se
        Squeeze-and-excitation block in the decoder (hidden width ``width // 2``).
    decoder
        ``'official'`` (group axis folded into channels: not equivariant) or ``'equivariant'``
        (group conv, SE on statistics pooled over space and group, group pooling, pointwise
        maps: the whole network is equivariant). ``'equivariant'`` needs ``group`` p4 or p4m.
    links
        SDSEN's recurrent links between the blocks of consecutive stages.
    arch
        ``'sdsen'`` or ``'dsen'``. DSEN is one stage without links: ``arch='dsen'`` sets
        ``stages=1`` and ``links=False``.
    z2_channels
        Channels of the ``'z2'`` model; ``None`` picks ``round(channels * sqrt(4))``
        (``2 * channels``): a ``C -> C`` p4 convolution holds ``4 C^2 k^2`` weights, as a
        ``2C -> 2C`` plain one does, so the counts differ only by the biases and the
        decoder (+0.9 % for the official SDSEN, +2.3 % for DSEN; more at a few channels, e.g.
        +8 % for a 2-channel DSEN).
        Ignored for p4 / p4m.
    flip_channels
        Reverse the channel axis of the input and of every output rain layer. Set by
        :func:`~sdsen.models.load_official` with ``channel_order='rgb'``: the official weights
        work in OpenCV's BGR order, the package in RGB.
    negative_slope
        Slope of the LeakyReLU activations (official: 0.2).

    Examples
    --------
    >>> cfg = ModelConfig(channels=4, stages=2, group="z2")
    >>> cfg.width, ModelConfig(**dataclasses.asdict(cfg)) == cfg
    (8, True)
    >>> ModelConfig(arch="dsen").stages
    1
    """

    channels: int = 10
    stages: int = 8
    blocks: int = 4
    kernel_size: int = 5
    group: str = "p4"
    se: bool = True
    decoder: str = "official"
    links: bool = True
    arch: str = "sdsen"
    z2_channels: int | None = None
    flip_channels: bool = False
    negative_slope: float = 0.2

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if isinstance(value, str):
                value = value.lower()
                setattr(self, name, value)
            if value not in choices:
                raise ValueError(f"ModelConfig.{name} must be one of {choices}, got {value!r}")
        for name in ("channels", "stages", "blocks", "kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"ModelConfig.kernel_size must be odd (same padding k // 2), got {self.kernel_size}"
            )
        if self.z2_channels is not None and (
            isinstance(self.z2_channels, bool)
            or not isinstance(self.z2_channels, int)
            or self.z2_channels < 1
        ):
            raise ValueError(
                f"ModelConfig.z2_channels must be None or a positive int, got {self.z2_channels!r}"
            )
        for name in ("se", "links", "flip_channels"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(  # noqa: TRY004 - config errors are ValueErrors (contract)
                    f"ModelConfig.{name} must be a bool, got {getattr(self, name)!r}"
                )
        if not isinstance(self.negative_slope, (int, float)) or isinstance(
            self.negative_slope, bool
        ):
            raise ValueError(  # noqa: TRY004 - config errors are ValueErrors (contract)
                f"ModelConfig.negative_slope must be a float, got {self.negative_slope!r}"
            )
        self.negative_slope = float(self.negative_slope)
        if self.decoder == "equivariant" and self.group == "z2":
            raise ValueError(
                "decoder='equivariant' needs group 'p4' or 'p4m'; a 'z2' model has no group axis "
                "to pool (use decoder='official' for the plain CNN baseline)"
            )
        if self.arch == "dsen":
            self.stages = 1
            self.links = False

    @property
    def group_order(self) -> int:
        """Size G of the group axis: 1 (z2), 4 (p4) or 8 (p4m)."""
        return _GROUP_ORDER[self.group]

    @property
    def width(self) -> int:
        """Feature channels actually used: ``channels``, or the z2 width for ``group='z2'``."""
        if self.group != "z2":
            return self.channels
        if self.z2_channels is not None:
            return self.z2_channels
        return round(self.channels * math.sqrt(_GROUP_ORDER["p4"]))

    def to_dict(self) -> dict[str, Any]:
        """``dataclasses.asdict(self)``: plain JSON types, ``ModelConfig(**d) == self``."""
        return dataclasses.asdict(self)
