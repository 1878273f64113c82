r"""Filter-bank transforms: one base filter, its copies under every group element.

A group convolution with output group :math:`G` correlates the input with
:math:`|G|` transformed copies of each base filter. The copy for the output element
:math:`g` is the base filter moved by :math:`g`, using the same regular action as on
feature maps (:mod:`sdsen.gconv.groups`):

- planar input (``Z2 -> G``): the filter is a planar function,
  :math:`\kappa_g = T_g\,\kappa` (rotate, and mirror for p4m);
- group input (``G -> G``): the filter is a function on the input group,
  :math:`\kappa_g(h, x) = \kappa(g^{-1}h, g^{-1}x)`, so the input-group axis is permuted
  (for p4 this is ``w.roll(r, dims=2)``) and every plane is transformed.

With this choice :math:`\kappa \star [L_g f] = L_g[\kappa \star f]` (equivariance) and the
weight layout and outputs are those of GrouPy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from .groups import Group, act_on_group_maps, act_on_plane

__all__ = ["expand_filters", "transform_filters"]

_Action = Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]


def transform_filters(weight: torch.Tensor, out_group: Group, in_group_order: int) -> torch.Tensor:
    """Stack the transformed copies of a filter bank.

    Parameters
    ----------
    weight
        Base filters, shape ``(C_out, C_in, G_in, k, k)`` with ``G_in`` = 1 (planar input) or
        ``out_group.order`` (group input).
    out_group
        Group whose elements index the copies.
    in_group_order
        ``G_in``, 1 for a ``Z2 -> G`` layer.

    Returns
    -------
    torch.Tensor
        Shape ``(C_out, G, C_in, G_in, k, k)``: ``out[:, g]`` is the filter bank moved by the
        g-th group element (index ``4 m + r``). Differentiable: built from ``rot90``, ``flip``
        and a permutation of the input-group axis.

    Examples
    --------
    >>> from sdsen.gconv.groups import P4
    >>> w = torch.zeros(1, 1, 1, 3, 3); w[..., 0, 1] = 1.0  # a bar pointing up
    >>> transform_filters(w, P4, 1)[0, :, 0, 0].nonzero()[:, 1:].tolist()
    [[0, 1], [1, 0], [2, 1], [1, 2]]
    """
    if weight.dim() != 5 or weight.shape[2] != in_group_order:
        raise ValueError(
            f"expected a filter bank of shape (C_out, C_in, {in_group_order}, k, k), "
            f"got {tuple(weight.shape)}"
        )
    if out_group.order == 1:
        return weight.unsqueeze(1)
    act: _Action = (
        act_on_plane if in_group_order == 1 else partial(act_on_group_maps, group=out_group)
    )
    copies = _p4_copies(weight, act)
    return copies if out_group.order == 4 else _p4m_copies(copies, act)


def _p4_copies(weight: torch.Tensor, act: _Action) -> torch.Tensor:
    r"""The four rotated copies :math:`L_{r^k}\kappa`, ``k = 0..3``, stacked on dim 1.

    Built by doubling with the p4 law :math:`r^a r^b = r^{a + b \bmod 4}`: first
    :math:`[\kappa, L_r\kappa]`, then both moved at once by :math:`L_{r^2}`, which gives
    :math:`[L_{r^2}\kappa, L_{r^3}\kappa]`. Two moves and two concatenations instead of one
    move per element, since the expansion runs at every training step.
    """
    pair = torch.stack([weight, act(weight, (1, 0))], dim=1)
    return torch.cat([pair, act(pair, (2, 0))], dim=1)


def _p4m_copies(rotations: torch.Tensor, act: _Action) -> torch.Tensor:
    """Complete the four rotated copies to the eight p4m copies, stacked on dim 1.

    By the D4 law :math:`(0, 1)(r, 0) = (r, 1)`: the element at index ``4 + r`` is "rotate by
    ``r``, then mirror", so mirroring all four rotated copies at once gives copies 4..7.
    """
    return torch.cat([rotations, act(rotations, (0, 1))], dim=1)


def expand_filters(weight: torch.Tensor, out_group: Group, in_group_order: int) -> torch.Tensor:
    """The filter bank as a plain ``conv2d`` weight, shape ``(C_out * G, C_in * G_in, k, k)``.

    Output channel ``o * G + g`` is copy ``g`` of filter ``o``; input channel ``i * G_in + h``
    reads plane ``h`` of input channel ``i``, matching ``x.reshape(B, C_in * G_in, H, W)``.
    """
    t = transform_filters(weight, out_group, in_group_order)
    c_out, g, c_in, g_in, kh, kw = t.shape
    return t.reshape(c_out * g, c_in * g_in, kh, kw)
