r"""Pooling for group feature maps ``(B, C, G, H, W)``.

Group pooling reduces the group axis: since :math:`L_g` only permutes that axis (and moves
pixels), ``max`` or ``mean`` over it gives channels that are *invariant* to the group up to the
spatial transform, :math:`\mathrm{pool}(L_g f) = T_g\,\mathrm{pool}(f)`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["group_max_pool2d", "group_pool", "plane_group_spatial_max_pooling"]


def _check_group_maps(x: torch.Tensor, name: str) -> None:
    if x.dim() != 5:
        raise ValueError(
            f"{name} expects group feature maps of shape (B, C, G, H, W), got {tuple(x.shape)}"
        )


def group_pool(x: torch.Tensor, mode: Literal["max", "mean"] = "max") -> torch.Tensor:
    """Pool over the group axis: ``(B, C, G, H, W)`` to ``(B, C, H, W)``.

    Examples
    --------
    >>> maps = torch.arange(8.0).reshape(1, 1, 4, 1, 2)  # (B, C, G, H, W): planes [0, 1] .. [6, 7]
    >>> group_pool(maps, "max").flatten().tolist(), group_pool(maps, "mean").flatten().tolist()
    ([6.0, 7.0], [3.0, 4.0])
    """
    _check_group_maps(x, "group_pool")
    if mode == "max":
        return x.amax(dim=2)
    if mode == "mean":
        return x.mean(dim=2)
    raise ValueError(f"group_pool mode must be 'max' or 'mean', got {mode!r}")


def group_max_pool2d(
    x: torch.Tensor, kernel_size: int, stride: int | None = None, padding: int = 0
) -> torch.Tensor:
    """Spatial max-pooling of every plane of ``(B, C, G, H, W)`` maps to ``(B, C, G, H', W')``.

    Examples
    --------
    >>> group_max_pool2d(torch.rand(2, 3, 4, 9, 8), 2).shape
    torch.Size([2, 3, 4, 4, 4])
    """
    _check_group_maps(x, "group_max_pool2d")
    b, c, g, h, w = x.shape
    y = F.max_pool2d(x.reshape(b, c * g, h, w), kernel_size, stride, padding)
    return y.reshape(b, c, g, *y.shape[-2:])


def plane_group_spatial_max_pooling(
    x: torch.Tensor, ksize: int, stride: int | None = None, pad: int = 0
) -> torch.Tensor:
    """GrouPy's name and keywords for :func:`group_max_pool2d` (same result).

    Lets code written for ``groupy.gconv.pytorch_gconv.pooling`` run unchanged:
    ``(B, C, G, H, W)`` to ``(B, C, G, H', W')``.
    """
    return group_max_pool2d(x, ksize, stride, pad)
