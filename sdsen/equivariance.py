r"""Measure and assert equivariance under the point groups of :mod:`sdsen.gconv`.

A function :math:`\Phi` is equivariant when moving its input moves its output the same way,

.. math:: \Phi(L^{\mathrm{in}}_g\, x) = L^{\mathrm{out}}_g\, \Phi(x) \quad \text{for every } g,

with the action :math:`L_g` chosen by the *kind* of tensor (:data:`KINDS`):

- ``'plane'``: images ``(B, C, H, W)``, :math:`L_g = T_g` (rotate, then mirror);
- ``'group'``: group feature maps ``(B, C, G, H, W)``, the regular action (planes transformed
  by :math:`T_g`, the G axis permuted by the group law);
- ``'planes'``: a list or tuple of images, each moved by :math:`T_g` (a network returning one
  rain layer per stage);
- ``'invariant'``: left as is (a global feature, a score).

The checker loops over every group element and reports the largest absolute difference between
the two sides, so a failure names the element that breaks the identity.

.. warning::
   Exact equivariance of convolutions needs stride 1 and "same" padding (see
   :mod:`sdsen.gconv.layers`); odd-sized inputs also keep stride 2 exact. Use non-square inputs:
   a square image hides a swap of the H and W axes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch

from .gconv.groups import Group, act_on_group_maps, act_on_plane

__all__ = ["KINDS", "Kind", "act", "assert_equivariant", "equivariance_error"]

Kind = Literal["plane", "group", "planes", "invariant"]
#: The tensor kinds the checker can move.
KINDS: tuple[str, ...] = ("plane", "group", "planes", "invariant")

Element = tuple[int, int]


def act(x: Any, g: Element, group: Group, kind: Kind) -> Any:
    """Move ``x`` by the group element ``g`` according to its kind.

    Parameters
    ----------
    x
        A tensor ``(B, C, H, W)`` (``'plane'``), ``(B, C, G, H, W)`` (``'group'``), a list or
        tuple of ``(B, C, H, W)`` tensors (``'planes'``), or anything (``'invariant'``).
    g
        Element ``(r, m)`` of ``group``.
    group
        :data:`~sdsen.gconv.groups.P4` or :data:`~sdsen.gconv.groups.P4M` (or ``Z2``).
    kind
        One of :data:`KINDS`.

    Returns
    -------
    Same type as ``x``; spatial axes ``(H, W)`` become ``(W, H)`` for a quarter turn.

    Examples
    --------
    >>> from sdsen.gconv import P4
    >>> act(torch.zeros(1, 2, 4, 5, 3), (1, 0), P4, "group").shape
    torch.Size([1, 2, 4, 3, 5])
    """
    if kind == "plane":
        return act_on_plane(x, g)
    if kind == "group":
        return act_on_group_maps(x, g, group)
    if kind == "planes":
        return type(x)(act_on_plane(t, g) for t in x)
    if kind == "invariant":
        return x
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def _flat(y: Any, kind: Kind) -> list[torch.Tensor]:
    if kind == "planes":
        return list(y)
    if kind == "invariant" and isinstance(y, Sequence) and not isinstance(y, torch.Tensor):
        return list(y)
    return [y]


def _max_abs_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    if len(a) != len(b) or any(s.shape != t.shape for s, t in zip(a, b, strict=False)):
        return float("inf")
    return max(
        (float((s - t).abs().max()) if s.numel() else 0.0) for s, t in zip(a, b, strict=True)
    )


def equivariance_error(
    fn: Callable[[Any], Any],
    x: Any,
    group: Group,
    in_kind: Kind,
    out_kind: Kind,
    elements: Iterable[Element] | None = None,
    relative: bool = False,
) -> dict[Element, float]:
    r"""Largest deviation from equivariance, for each group element.

    Parameters
    ----------
    fn
        The function or module :math:`\Phi` (called under ``torch.no_grad()``).
    x
        Input of kind ``in_kind``, e.g. ``(B, C, H, W)``; use a non-square ``H != W``.
    group
        The group whose elements are tested.
    in_kind, out_kind
        Kinds of the input and of the output of ``fn`` (:data:`KINDS`).
    elements
        Elements ``(r, m)`` to test; all of ``group.elements`` by default.
    relative
        Divide each error by ``max |fn(x)|`` (unless that is 0). Round-off grows with the size
        of the values, so a relative error compares modules of any scale against one tolerance
        (float32, exactly equivariant: about 1e-7 for one layer, up to a few 1e-6 for an
        8-stage SDSEN, where round-off accumulates).

    Returns
    -------
    dict
        ``{g: max |fn(L_g x) - L_g fn(x)|}`` (over ``max |fn(x)|`` when ``relative``); ``inf``
        where the two sides differ in shape (or in the number of outputs).

    Examples
    --------
    >>> from sdsen.gconv import P4, P4ConvZ2
    >>> layer = P4ConvZ2(3, 2, kernel_size=3, padding=1)
    >>> err = equivariance_error(layer, torch.randn(1, 3, 9, 6), P4, "plane", "group")
    >>> sorted(err), max(err.values()) < 1e-5
    ([(0, 0), (1, 0), (2, 0), (3, 0)], True)
    """
    elements = list(group.elements if elements is None else elements)
    errors: dict[Element, float] = {}
    with torch.no_grad():
        y = fn(x)
        scale = max((float(t.abs().max()) for t in _flat(y, out_kind) if t.numel()), default=0.0)
        scale = scale if relative and scale > 0 else 1.0
        for g in elements:
            moved_then_fn = _flat(fn(act(x, g, group, in_kind)), out_kind)
            fn_then_moved = _flat(act(y, g, group, out_kind), out_kind)
            errors[g] = _max_abs_diff(moved_then_fn, fn_then_moved) / scale
    return errors


def assert_equivariant(
    fn: Callable[[Any], Any],
    x: Any,
    group: Group,
    in_kind: Kind,
    out_kind: Kind,
    atol: float,
    elements: Iterable[Element] | None = None,
) -> dict[Element, float]:
    r"""Assert :math:`\Phi(L_g x) = L_g \Phi(x)` to ``atol`` for every element ``g``.

    Parameters are those of :func:`equivariance_error`, plus ``atol``, the largest absolute
    difference accepted (e.g. ``1e-5`` in float32, ``1e-10`` in float64).

    Returns
    -------
    dict
        The errors, ``{g: max |fn(L_g x) - L_g fn(x)|}``.

    Raises
    ------
    AssertionError
        Naming every failing element, its index on the group axis and its error.

    Examples
    --------
    >>> from sdsen.gconv import P4M
    >>> _ = assert_equivariant(torch.square, torch.randn(2, 3, 5, 4), P4M, "plane", "plane", 0)
    >>> assert_equivariant(torch.nn.Conv2d(3, 1, 3), torch.randn(1, 3, 7, 6), P4M, "plane",
    ...                    "plane", 1e-5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: not equivariant under ... of p4m ...
    """
    errors = equivariance_error(fn, x, group, in_kind, out_kind, elements)
    failed = {g: e for g, e in errors.items() if not e <= atol}
    if failed:
        detail = "; ".join(
            f"g={g} (index {group.index(g)}): max abs error {e:.3g}" for g, e in failed.items()
        )
        raise AssertionError(
            f"not equivariant under {len(failed)} of {len(errors)} elements of {group.name} "
            f"({in_kind} -> {out_kind}, atol={atol:g}): {detail}"
        )
    return errors
