"""Building blocks of DSEN / SDSEN: convolution factory, conv + activation, SE, group pooling.

Feature maps are ``(B, C, G, H, W)`` for the p4 / p4m models (G = 4 or 8) and ``(B, C, H, W)``
for the plain ``'z2'`` model.
"""

from __future__ import annotations

import torch
from torch import nn

from ..gconv import P4ConvP4, P4ConvZ2, P4MConvP4M, P4MConvZ2, group_pool

__all__ = ["ConvAct", "GroupPool", "SqueezeExcite", "make_conv"]

_LAYERS = {
    ("p4", "plane"): P4ConvZ2,
    ("p4", "group"): P4ConvP4,
    ("p4m", "plane"): P4MConvZ2,
    ("p4m", "group"): P4MConvP4M,
}


def make_conv(
    group: str, in_kind: str, in_channels: int, out_channels: int, kernel_size: int
) -> nn.Module:
    """A stride-1 convolution with "same" padding ``kernel_size // 2``.

    Parameters
    ----------
    group
        ``'p4'``, ``'p4m'`` or ``'z2'`` (plain ``nn.Conv2d``).
    in_kind
        ``'plane'`` for an input ``(B, C_in, H, W)`` (a lifting layer for p4 / p4m),
        ``'group'`` for ``(B, C_in, G, H, W)``. Ignored for ``'z2'``.
    in_channels, out_channels, kernel_size
        As for ``nn.Conv2d``; channels do not count the group axis.

    Examples
    --------
    >>> make_conv("p4", "plane", 3, 2, 5)(torch.rand(1, 3, 9, 7)).shape
    torch.Size([1, 2, 4, 9, 7])
    """
    pad = kernel_size // 2
    if group == "z2":
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)
    return _LAYERS[(group, in_kind)](in_channels, out_channels, kernel_size, padding=pad)


class ConvAct(nn.Module):
    """``LeakyReLU(conv0(x))``; named as the official ``P4CZ2`` / ``P4CP4`` (key ``conv0``)."""

    def __init__(self, conv: nn.Module, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.conv0 = conv
        self.relu = nn.LeakyReLU(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in[, G_in], H, W)`` to ``(B, C_out[, G], H, W)``."""
        return self.relu(self.conv0(x))

    def on_zeros(self, like: torch.Tensor) -> torch.Tensor:
        """The output for an all-zero input, ``LeakyReLU(bias)``, broadcast to ``like``'s shape
        (``like``: a tensor shaped as the output, e.g. the block's own input for a C -> C link).

        Exactly what the convolution of zeros gives (zero padding of zeros is zeros), without
        computing it: used for the links of stage 1, whose previous state is zero. The shape
        is read from ``like`` as a tensor, so a traced graph (ONNX) keeps it dynamic.
        """
        b = self.conv0.bias
        shape = (1, -1) + (1,) * (like.dim() - 2)
        return self.relu(b.view(shape)).expand_as(like)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation as coded in the official SDSEN (keys ``fc.0``, ``fc.2``).

    ``y = x * sigmoid(W2 relu(W1 mean(x) + b1) + b2)``, the mean taken over every axis but
    batch and channel: ``(H, W)`` for ``(B, C, H, W)``, ``(G, H, W)`` for ``(B, C, G, H, W)``
    (so the gate is invariant and the block equivariant on group maps).

    Parameters
    ----------
    channels
        ``C``; the hidden width is ``max(1, C // 2)`` (official ``SEBlock(C, C // 2)``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def gate(self, mean: torch.Tensor) -> torch.Tensor:
        """Gate ``(B, C)`` in (0, 1) from the squeezed statistics ``mean`` ``(B, C)``."""
        return self.fc(mean)

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """Rescale the channels of ``x`` ``(B, C, ...)``; a given ``gate`` ``(B, C)`` or ``(C,)``
        replaces the one computed from ``x`` (tiled inference with image-wide statistics)."""
        if gate is None:
            gate = self.gate(x.mean(dim=tuple(range(2, x.dim()))))
        if gate.dim() == 1:
            gate = gate.unsqueeze(0)
        return x * gate[(...,) + (None,) * (x.dim() - 2)]  # indexing: a dynamic batch traces


class GroupPool(nn.Module):
    """Mean over the group axis, ``(B, C, G, H, W)`` to ``(B, C, H, W)`` (invariant channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See :func:`sdsen.gconv.group_pool`."""
        return group_pool(x, "mean")
