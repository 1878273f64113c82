"""Model size and cost: parameters, multiply-adds per pixel, receptive field."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..gconv import GroupConv2d
from .config import ModelConfig

__all__ = ["ModelSummary", "receptive_field", "summary"]


@dataclass
class ModelSummary:
    """What :func:`summary` reports.

    Attributes
    ----------
    parameters
        Number of trainable parameters.
    macs
        Multiply-adds of one forward pass on one ``image_size`` image (convolutions and the SE
        linear maps; activations, sums and pooling not counted).
    macs_per_pixel
        ``macs / (H * W)``.
    image_size
        ``(H, W)`` used for the count.
    receptive_field
        Radius ``r`` of the last rain layer's receptive field: ``R_T`` at a pixel depends on
        the ``(2r + 1) x (2r + 1)`` input window around it.
    per_layer
        Multiply-adds of one pass, per module name (summed over stages).
    """

    parameters: int
    macs: int
    macs_per_pixel: float
    image_size: tuple[int, int]
    receptive_field: int
    per_layer: dict[str, int] = field(default_factory=dict)


def receptive_field(config: ModelConfig) -> list[int]:
    """Receptive-field radius of ``R_t`` for every stage ``t``.

    With ``r = kernel_size // 2``, the pre-layer, every block and the decoder's first
    convolution add ``r``; a link adds ``2 r`` (link conv and block conv) from the same block
    of the previous stage; ``x_t = O - R_{t-1}`` carries ``R_{t-1}``'s field. For the official
    SDSEN (``r = 2``, 4 blocks) stage ``t`` has radius ``12 (t + 1)``: 96 pixels at stage 7,
    a 193 x 193 window (the links never dominate the ``x_t`` feedback).

    Examples
    --------
    >>> receptive_field(ModelConfig())
    [12, 24, 36, 48, 60, 72, 84, 96]
    """
    r = config.kernel_size // 2
    prev_states: list[int] | None = None
    x_rad = 0
    out = []
    for _ in range(config.stages):
        h = x_rad + r
        states = []
        for i in range(config.blocks):
            h = h + r
            if config.links and prev_states is not None:
                h = max(h, prev_states[i] + 2 * r)
            states.append(h)
        prev_states = states
        x_rad = h + r
        out.append(x_rad)
    return out


def summary(model: nn.Module, image_size: tuple[int, int] = (256, 256)) -> ModelSummary:
    """Count parameters and multiply-adds (forward hooks on one pass over a zero image).

    Parameters
    ----------
    model
        A :class:`~sdsen.models.SDSEN` / :class:`~sdsen.models.DSEN` (any module taking
        ``(1, 3, H, W)`` works; ``receptive_field`` is then 0).
    image_size
        ``(H, W)``. Convolutions cost the same per pixel at any size; the SE linear maps run
        once per image.

    Examples
    --------
    >>> from sdsen.models import DSEN
    >>> s = summary(DSEN(channels=2), image_size=(16, 12))
    >>> s.parameters
    2178
    """
    h, w = image_size
    counts: dict[str, int] = {}

    def hook(name: str):
        def fn(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            if isinstance(mod, GroupConv2d):
                per_out = (
                    mod.in_channels * mod.in_group_order * mod.kernel_size[0] * mod.kernel_size[1]
                )
            elif isinstance(mod, nn.Conv2d):
                per_out = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            else:  # nn.Linear
                per_out = mod.in_features
            counts[name] = counts.get(name, 0) + out.numel() // out.shape[0] * per_out

        return fn

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in model.named_modules()
        if isinstance(m, (GroupConv2d, nn.Conv2d, nn.Linear))
    ]
    p = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, dtype=p.dtype, device=p.device))
    finally:
        for handle in handles:
            handle.remove()
    macs = sum(counts.values())
    cfg = getattr(model, "config", None)
    rf = receptive_field(cfg)[-1] if isinstance(cfg, ModelConfig) else 0
    return ModelSummary(
        parameters=sum(q.numel() for q in model.parameters() if q.requires_grad),
        macs=macs,
        macs_per_pixel=macs / (h * w),
        image_size=(h, w),
        receptive_field=rf,
        per_layer=counts,
    )
