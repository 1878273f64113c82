r"""GrouPy-compatible group-convolution layers: P4ConvZ2, P4ConvP4, P4MConvZ2, P4MConvP4M.

Each layer (1) builds the transformed filter bank (:func:`~sdsen.gconv.filters.expand_filters`)
and (2) runs one plain ``conv2d`` on the input with its group axis folded into channels.
Equivariance identity, for every element ``g`` of the output group:

.. math:: \mathrm{layer}(L_g x) = L_g\, \mathrm{layer}(x),

with :math:`L_g` the regular action of :mod:`sdsen.gconv.groups` (a planar input only rotates
or mirrors, :math:`L_g x = T_g x`).

.. warning::
   The identity is exact for stride 1 and "same" padding ``k // 2``. With a stride ``s`` it
   holds only when the sampled grid is symmetric, i.e. ``(H + 2 p - k)`` and ``(W + 2 p - k)``
   are multiples of ``s`` (for ``k = 3, p = 1, s = 2``: odd ``H`` and ``W``); otherwise a
   rotation maps the grid onto a different one (GrouPy behaves the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .filters import expand_filters, transform_filters
from .groups import P4, P4M, Group

__all__ = ["GroupConv2d", "P4ConvP4", "P4ConvZ2", "P4MConvP4M", "P4MConvZ2"]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` hold the same values with the same dtype, device and shape."""
    return a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)


@dataclass(frozen=True)
class _FilterCache:
    """The expanded ``conv2d`` weight and a snapshot of the weight it came from."""

    weight: torch.Tensor
    conv_weight: torch.Tensor

    def is_valid_for(self, weight: torch.Tensor) -> bool:
        # Compare values, not version counters: ``param.data.copy_(...)`` or ``param.data = t``
        # change the values without bumping ``param._version``.
        if self.conv_weight.is_inference() and not torch.is_inference_mode_enabled():
            return False  # inference tensors cannot enter autograd outside inference mode
        return _same_values(self.weight, weight)


class GroupConv2d(nn.Module):
    """Split group convolution from a ``G_in``-indexed input to a ``G``-indexed output.

    Parameters
    ----------
    in_channels, out_channels
        Channels C_in and C_out (not counting the group axis).
    kernel_size, stride, padding
        As for ``torch.nn.Conv2d``.
    bias
        One bias per output channel, shared over the group axis (shape ``(C_out,)``).
    dilation
        As for ``torch.nn.Conv2d``; after ``bias`` so that GrouPy's positional calls work.
    group
        Output group (:data:`~sdsen.gconv.groups.P4` or :data:`~sdsen.gconv.groups.P4M`).
    in_group_order
        1 for a planar input ``(B, C_in, H, W)``; ``group.order`` for ``(B, C_in, G, H, W)``.

    Attributes
    ----------
    weight : torch.nn.Parameter
        Base filters, shape ``(C_out, C_in, G_in, k, k)``.
    bias : torch.nn.Parameter or None
        Shape ``(C_out,)``.
    in_channels, out_channels, kernel_size, stride, padding, dilation : int or tuple of int
        As passed (sizes as pairs ``(h, w)``).
    ksize, input_stabilizer_size, output_stabilizer_size : int
        GrouPy's names for ``k``, ``G_in`` and ``G``, so code written for GrouPy's layers reads
        them unchanged.

    Notes
    -----
    Initialisation as GrouPy's PyTorch layers (``SplitGConv2D.reset_parameters``):
    ``U(-s, s)`` with ``s = 1 / sqrt(C_in * k * k)`` for the weight and then the bias, drawn in
    that order, so the same torch seed gives GrouPy's values. The input group axis ``G_in`` is
    not in the fan-in there (GrouPy's Chainer layers differ: normal weights with variance
    ``1 / (C_in * G_in * k * k)`` and a zero bias).

    In eval mode, when no gradient is needed for the weight (``torch.no_grad()``,
    ``torch.inference_mode()`` or ``weight.requires_grad == False``), the expanded filter bank
    is cached. Each call compares the weight with a snapshot taken when the cache was built
    (one ``torch.equal``, which synchronises a GPU) and rebuilds it when they differ, whatever
    changed them: an optimizer step, ``load_state_dict``, an in-place edit through ``.data``, a
    move to another device or dtype. ``train()`` and ``eval()`` drop the cache. The bias is
    not cached: as in GrouPy, it is added to the ``conv2d`` output, ``(B, C_out, G, H', W')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        *,
        group: Group,
        in_group_order: int,
    ) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(
                f"in_channels and out_channels must be positive, got {in_channels}, {out_channels}"
            )
        if in_group_order not in (1, group.order):
            raise ValueError(
                f"in_group_order must be 1 or {group.order} for {group.name}, got {in_group_order}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        if self.kernel_size[0] != self.kernel_size[1] or self.kernel_size[0] <= 0:
            raise ValueError(
                f"kernel_size must be one positive size for square filters (rotations map a k x k "
                f"filter onto itself), got {kernel_size!r}"
            )
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.group = group
        self.in_group_order = in_group_order
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, in_group_order, *self.kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._cache: _FilterCache | None = None
        self.reset_parameters()

    @property
    def ksize(self) -> int:
        """Filter size ``k`` (GrouPy's attribute name)."""
        return self.kernel_size[0]

    @property
    def input_stabilizer_size(self) -> int:
        """``G_in``: 1 for a planar input, the group order for a group input (GrouPy's name)."""
        return self.in_group_order

    @property
    def output_stabilizer_size(self) -> int:
        """``G``, the order of the output group (GrouPy's name)."""
        return self.group.order

    def reset_parameters(self) -> None:
        """GrouPy's initialisation: weight, then bias, uniform in ``±1/sqrt(C_in·k·k)``."""
        fan_in = self.in_channels * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)
        self._cache = None

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        return s + f", bias={self.bias is not None}, group={self.group.name}"

    def train(self, mode: bool = True) -> GroupConv2d:
        """Set the training mode (``eval()`` calls ``train(False)``); drops the filter cache."""
        self._cache = None
        return super().train(mode)

    def transformed_filters(self) -> torch.Tensor:
        """The filter bank moved by every group element, detached, for inspection and figures.

        Returns
        -------
        torch.Tensor
            Shape ``(C_out, G, C_in, G_in, k, k)``; ``[:, g]`` is the bank moved by the element
            at index ``g`` (see :func:`~sdsen.gconv.filters.transform_filters`).

        Examples
        --------
        >>> P4ConvP4(3, 2, kernel_size=5).transformed_filters().shape
        torch.Size([2, 4, 3, 4, 5, 5])
        """
        with torch.no_grad():
            return transform_filters(self.weight, self.group, self.in_group_order)

    def conv2d_weight(self) -> torch.Tensor:
        """Weight of the equivalent plain ``conv2d``, ``(C_out * G, C_in * G_in, k, k)`` (see
        :func:`~sdsen.gconv.filters.expand_filters`); cached in eval mode while the weight's
        values stay the same."""
        weight = self.weight
        if self.training or (weight.requires_grad and torch.is_grad_enabled()):
            return expand_filters(weight, self.group, self.in_group_order)  # never cached
        cache = self._cache
        if cache is not None and cache.is_valid_for(weight):
            return cache.conv_weight
        w = expand_filters(weight, self.group, self.in_group_order)
        self._cache = _FilterCache(weight.detach().clone(), w)
        return w

    def conv2d_params(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight and bias of the equivalent plain ``conv2d``: ``F.conv2d(x, *params, ...)``
        equals the layer's output up to float rounding (the layer adds the bias afterwards).

        Returns
        -------
        weight : torch.Tensor
            ``(C_out * G, C_in * G_in, k, k)``, :meth:`conv2d_weight`.
        bias : torch.Tensor or None
            ``(C_out * G,)``, the bias of each output channel repeated over the group axis.
        """
        b = None if self.bias is None else self.bias.repeat_interleave(self.group.order)
        return self.conv2d_weight(), b

    def _as_conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as the ``(B, C_in * G_in, H, W)`` batch of the plain ``conv2d``, or a
        ``ValueError`` naming the expected shape. Like GrouPy's ``view``, a group input may come
        flattened, ``(B, C_in * G_in, H, W)``, and a planar one as ``(B, C_in, 1, H, W)``."""
        c, g = self.in_channels, self.in_group_order
        if x.dim() == 5 and x.shape[1] == c and x.shape[2] == g:
            return x.flatten(1, 2)
        if x.dim() == 4 and x.shape[1] == c * g:
            return x
        if g == 1:
            expected = f"(B, C, H, W) = (B, {c}, H, W) or (B, C, 1, H, W) = (B, {c}, 1, H, W)"
        else:
            expected = (
                f"(B, C, G, H, W) = (B, {c}, {g}, H, W) or (B, C * G, H, W) = (B, {c * g}, H, W)"
            )
        raise ValueError(
            f"{type(self).__name__} expects an input of shape {expected}, got {tuple(x.shape)}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Correlate ``x`` with every transformed filter.

        Parameters
        ----------
        x
            ``(B, C_in, H, W)`` for a planar input, ``(B, C_in, G_in, H, W)`` for a group input
            (also accepted flattened, ``(B, C_in * G_in, H, W)``, as GrouPy does).

        Returns
        -------
        torch.Tensor
            ``(B, C_out, G, H', W')``. The bias is added after the convolution, as GrouPy
            adds it, so outputs equal GrouPy's bit for bit (inside ``conv2d`` the sum rounds
            differently, up to ~1e-5 in float32).

        Raises
        ------
        ValueError
            If ``x`` has the wrong number of dimensions, channels or group size.
        """
        w = self.conv2d_weight()
        y = F.conv2d(self._as_conv_input(x), w, None, self.stride, self.padding, self.dilation)
        y = y.unflatten(1, (self.out_channels, self.group.order))
        if self.bias is None:
            return y
        b = self.bias.view(1, -1, 1, 1, 1)
        if b.dtype != y.dtype:  # autocast keeps half-precision maps
            b = b.to(y.dtype)
        # In place when no graph is recorded (one pass fewer over the output); out of place
        # under autograd, which would copy the whole gradient for an in-place add on a view.
        return y + b if y.requires_grad else y.add_(b)


class _GrouPyConv(GroupConv2d):
    """A :class:`GroupConv2d` with GrouPy's constructor (group fixed by the subclass)."""

    _group: ClassVar[Group]
    _planar_input: ClassVar[bool]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            bias,
            dilation,
            group=self._group,
            in_group_order=1 if self._planar_input else self._group.order,
        )


class P4ConvZ2(_GrouPyConv):
    """Lifting convolution, planar maps ``(B, C_in, H, W)`` to p4 maps ``(B, C_out, 4, H', W')``.

    Weight ``(C_out, C_in, 1, k, k)``; output slice ``r`` uses ``torch.rot90(w, r, (-2, -1))``.

    Examples
    --------
    >>> layer = P4ConvZ2(3, 8, kernel_size=3, padding=1)
    >>> layer(torch.rand(2, 3, 13, 11)).shape
    torch.Size([2, 8, 4, 13, 11])
    """

    _group = P4
    _planar_input = True


class P4ConvP4(_GrouPyConv):
    """p4 group convolution, ``(B, C_in, 4, H, W)`` to ``(B, C_out, 4, H', W')``.

    Weight ``(C_out, C_in, 4, k, k)``; output slice ``r`` uses
    ``torch.rot90(w.roll(r, dims=2), r, (-2, -1))``.

    Examples
    --------
    >>> layer = P4ConvP4(8, 8, kernel_size=3, padding=1)
    >>> layer(torch.rand(2, 8, 4, 13, 11)).shape
    torch.Size([2, 8, 4, 13, 11])
    """

    _group = P4
    _planar_input = False


class P4MConvZ2(_GrouPyConv):
    """Lifting convolution from planar maps to p4m maps ``(B, C_out, 8, H', W')``.

    Weight ``(C_out, C_in, 1, k, k)``; output slice ``r`` (0..3) uses
    ``torch.rot90(w, r, (-2, -1))`` and slice ``4 + r`` the same rotation followed by the mirror
    over H, ``torch.rot90(w, r, (-2, -1)).flip(-2)`` (the element ``(r, 1)``).

    Examples
    --------
    >>> P4MConvZ2(3, 4, kernel_size=3, padding=1)(torch.rand(1, 3, 9, 7)).shape
    torch.Size([1, 4, 8, 9, 7])
    """

    _group = P4M
    _planar_input = True


class P4MConvP4M(_GrouPyConv):
    """p4m group convolution, ``(B, C_in, 8, H, W)`` to ``(B, C_out, 8, H', W')``.

    Weight ``(C_out, C_in, 8, k, k)``; the input-group axis of each copy is permuted by the D4
    law (:meth:`~sdsen.gconv.groups.Group.regular_permutation`).

    Examples
    --------
    >>> P4MConvP4M(4, 4, kernel_size=3, padding=1)(torch.rand(1, 4, 8, 9, 7)).shape
    torch.Size([1, 4, 8, 9, 7])
    """

    _group = P4M
    _planar_input = False
