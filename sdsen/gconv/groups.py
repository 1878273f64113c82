r"""The plane symmetry groups p4 and p4m (their point groups C4 and D4) acting on image grids.

Elements
--------
An element is a pair ``(r, m)`` with ``r`` in ``{0, 1, 2, 3}`` (rotation by ``r`` quarter turns)
and ``m`` in ``{0, 1}`` (mirror). It acts on an image ``x`` of shape ``(..., H, W)`` as

.. math:: T_{(r, m)}\,x = \mathrm{flip}_H^m(\mathrm{rot90}^r(x)),

first ``torch.rot90(x, r, dims=(-2, -1))``, then the mirror over the H axis (``.flip(-2)``).
This order is GrouPy's (measured on its outputs, ``shared/fixtures/groupy_reference.npz``).
It is stored at index ``4 m + r`` on a group axis (GrouPy's order): p4 uses indices 0..3,
p4m all 8.

Group law
---------
With :math:`T = F^m R^r` and a mirror turning a rotation into its inverse, :math:`R F = F R^{-1}`,

.. math:: (r_1, m_1)(r_2, m_2) = (r_2 + (-1)^{m_2} r_1 \bmod 4,\; m_1 + m_2 \bmod 2),
          \qquad (r, m)^{-1} = (-(-1)^{m} r \bmod 4,\; m).

Regular representation
----------------------
A feature map on the group, shape ``(B, C, G, H, W)``, is a function ``f(h, x)`` of a group
element ``h`` (the G axis) and a pixel ``x``. The group acts on it by

.. math:: [L_g f](h, x) = f(g^{-1} h,\; g^{-1} x),

i.e. every plane is transformed by :math:`T_g` and the planes are permuted,
``out[:, :, h] = T_g(f[:, :, g^{-1} h])``. Group convolutions are built so that
:math:`\kappa \star [L_g f] = L_g [\kappa \star f]`; the same action, applied to a filter bank,
gives the transformed filters (see :mod:`sdsen.gconv.filters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import torch

__all__ = ["P4", "P4M", "Z2", "Group", "act_on_group_maps", "act_on_plane", "get_group"]


@dataclass(frozen=True)
class Group:
    """A finite group of grid symmetries: ``Z2`` (trivial), ``P4`` (C4) or ``P4M`` (D4).

    Parameters
    ----------
    name
        ``"z2"``, ``"p4"`` or ``"p4m"``.
    order
        Number of elements, the size G of the group axis (1, 4 or 8).

    Examples
    --------
    >>> P4M.compose((1, 0), (0, 1)), P4M.inverse((1, 1))
    ((3, 1), (1, 1))
    """

    name: str
    order: int

    @property
    def elements(self) -> list[tuple[int, int]]:
        """Elements ``(r, m)`` in group-axis order (index ``4 m + r``)."""
        n_mirror = 2 if self.order == 8 else 1
        n_rot = 1 if self.order == 1 else 4
        return [(r, m) for m in range(n_mirror) for r in range(n_rot)]

    def index(self, g: tuple[int, int]) -> int:
        """Position of element ``g = (r, m)`` on the group axis."""
        r, m = g
        return 4 * m + r if self.order > 1 else 0

    def compose(self, g1: tuple[int, int], g2: tuple[int, int]) -> tuple[int, int]:
        """Product ``g1 g2`` (apply ``g2`` first), by the D4 law in the module docstring."""
        (r1, m1), (r2, m2) = g1, g2
        if self.order == 1:
            return (0, 0)
        return ((r2 + (-1) ** m2 * r1) % 4, (m1 + m2) % 2)

    def inverse(self, g: tuple[int, int]) -> tuple[int, int]:
        """Inverse ``g^{-1}``, with ``compose(g, inverse(g)) == (0, 0)``."""
        r, m = g
        if self.order == 1:
            return (0, 0)
        return ((-((-1) ** m) * r) % 4, m)

    @cached_property
    def _perms(self) -> dict[tuple[int, int], tuple[int, ...]]:
        return {
            g: tuple(self.index(self.compose(self.inverse(g), h)) for h in self.elements)
            for g in self.elements
        }

    def regular_permutation(self, g: tuple[int, int]) -> list[int]:
        """Index list ``p`` with ``p[index(h)] = index(g^{-1} h)`` for every element ``h``.

        ``f[:, :, p]`` is the group axis of ``L_g f`` before the planes are transformed.
        """
        return list(self._perms[g])


Z2 = Group("z2", 1)
P4 = Group("p4", 4)
P4M = Group("p4m", 8)


def get_group(name: str) -> Group:
    """Return the :class:`Group` called ``name`` (``'z2'``, ``'p4'`` or ``'p4m'``)."""
    groups = {"z2": Z2, "p4": P4, "p4m": P4M}
    if name not in groups:
        raise ValueError(f"unknown group {name!r}; expected one of {sorted(groups)}")
    return groups[name]


def act_on_plane(x: torch.Tensor, g: tuple[int, int]) -> torch.Tensor:
    """Apply the spatial transform :math:`T_g` to the last two axes of ``x`` (``(..., H, W)``).

    A quarter turn swaps H and W: an input of shape ``(..., H, W)`` gives ``(..., W, H)`` for odd
    ``r``.

    Examples
    --------
    >>> act_on_plane(torch.arange(6).reshape(2, 3), (1, 1)).tolist()
    [[0, 3], [1, 4], [2, 5]]
    """
    r, m = g
    if r:
        x = torch.rot90(x, r, dims=(-2, -1))
    return x.flip(-2) if m else x


def act_on_group_maps(x: torch.Tensor, g: tuple[int, int], group: Group) -> torch.Tensor:
    """Regular action :math:`L_g` on group feature maps ``(B, C, G, H, W)``.

    Every plane is transformed by :math:`T_g` and the group axis is permuted so that
    ``out[..., h, :, :] = T_g(x[..., g^{-1} h, :, :])``. Any leading axes are allowed:
    ``(..., G, H, W)`` (a filter bank ``(C_out, C_in, G, k, k)`` is moved the same way).

    Raises
    ------
    ValueError
        If ``x.shape[-3]`` is not ``group.order``.

    Examples
    --------
    For p4 a quarter turn rotates every plane and rolls the group axis by one:

    >>> f = torch.randn(2, 3, 4, 5, 7)
    >>> torch.equal(act_on_group_maps(f, (1, 0), P4), torch.rot90(f.roll(1, 2), 1, (-2, -1)))
    True
    """
    if x.shape[-3] != group.order:
        raise ValueError(
            f"expected a group axis of size {group.order} for {group.name} at dim -3 of a "
            f"(B, C, G, H, W) tensor, got shape {tuple(x.shape)}"
        )
    perm = tuple(group.regular_permutation(g))
    if perm != tuple(range(group.order)):
        x = x.index_select(-3, _index_tensor(perm, x.device))
    return act_on_plane(x, g)


@lru_cache(maxsize=256)
def _index_tensor(perm: tuple[int, ...], device: torch.device) -> torch.Tensor:
    # Cached per device: building it at every call would copy (and, on a GPU, synchronise)
    # each time the filters are expanded. Never an inference tensor, which autograd refuses.
    with torch.inference_mode(False):
        return torch.tensor(perm, dtype=torch.long, device=device)
