"""The groups p4 / p4m of ``sdsen.gconv.groups``: group axioms, the law against the actual
spatial transforms, and the regular action on group feature maps."""

from __future__ import annotations

import itertools

import pytest
import torch

from sdsen.gconv import P4, P4M, Z2, Group, act_on_group_maps, act_on_plane, get_group

GROUPS = [P4, P4M]
IDS = ["p4", "p4m"]
E = (0, 0)


@pytest.mark.parametrize("group", [Z2, *GROUPS], ids=["z2", *IDS])
def test_elements_and_indices(group: Group) -> None:
    elements = group.elements
    assert len(elements) == len(set(elements)) == group.order
    assert [group.index(g) for g in elements] == list(range(group.order))
    assert elements[0] == E


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_identity(group: Group) -> None:
    for g in group.elements:
        assert group.compose(E, g) == g, g
        assert group.compose(g, E) == g, g


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_inverse(group: Group) -> None:
    for g in group.elements:
        g_inv = group.inverse(g)
        assert g_inv in group.elements, g
        assert group.compose(g, g_inv) == E, g
        assert group.compose(g_inv, g) == E, g


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_associativity(group: Group) -> None:
    for a, b, c in itertools.product(group.elements, repeat=3):
        left = group.compose(group.compose(a, b), c)
        right = group.compose(a, group.compose(b, c))
        assert left == right, (a, b, c)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_closure_and_latin_square(group: Group) -> None:
    # closure, and every row / column of the Cayley table is a permutation of the group
    for g in group.elements:
        row = [group.compose(g, h) for h in group.elements]
        col = [group.compose(h, g) for h in group.elements]
        assert sorted(row) == sorted(col) == sorted(group.elements), g


def test_p4m_is_not_abelian_and_p4_is() -> None:
    assert all(P4.compose(a, b) == P4.compose(b, a) for a in P4.elements for b in P4.elements)
    assert P4M.compose((1, 0), (0, 1)) != P4M.compose((0, 1), (1, 0))


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_law_matches_composition_of_spatial_transforms(group: Group) -> None:
    """``T_g T_h = T_{gh}`` on a non-square image, for every pair: the law is the real one."""
    x = torch.randn(2, 3, 5, 7)
    for g, h in itertools.product(group.elements, repeat=2):
        composed = act_on_plane(act_on_plane(x, h), g)
        assert torch.equal(composed, act_on_plane(x, group.compose(g, h))), (g, h)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_spatial_action_is_faithful(group: Group) -> None:
    x = torch.randn(6, 6)
    images = [act_on_plane(x, g) for g in group.elements]
    for (i, a), (j, b) in itertools.combinations(enumerate(images), 2):
        assert not torch.equal(a, b), (group.elements[i], group.elements[j])


def test_spatial_transform_convention() -> None:
    """``(r, m)``: rotate by ``r`` quarter turns with ``torch.rot90``, then mirror over H."""
    x = torch.randn(1, 4, 5, 7)
    for r, m in P4M.elements:
        expected = torch.rot90(x, r, dims=(-2, -1))
        expected = expected.flip(-2) if m else expected
        assert torch.equal(act_on_plane(x, (r, m)), expected), (r, m)
    assert act_on_plane(x, (1, 0)).shape == (1, 4, 7, 5)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_regular_action_is_a_homomorphism(group: Group) -> None:
    """``L_g L_h = L_{gh}`` on ``(B, C, G, H, W)`` maps, for every pair of elements."""
    f = torch.randn(2, 3, group.order, 5, 7)
    for g, h in itertools.product(group.elements, repeat=2):
        lhs = act_on_group_maps(act_on_group_maps(f, h, group), g, group)
        assert torch.equal(lhs, act_on_group_maps(f, group.compose(g, h), group)), (g, h)


@pytest.mark.parametrize("group", GROUPS, ids=IDS)
def test_regular_action_definition(group: Group) -> None:
    """``[L_g f](h) = T_g f(g^{-1} h)`` plane by plane."""
    f = torch.randn(1, 2, group.order, 4, 6)
    for g in group.elements:
        out = act_on_group_maps(f, g, group)
        for h in group.elements:
            src = group.index(group.compose(group.inverse(g), h))
            expected = act_on_plane(f[:, :, src], g)
            assert torch.equal(out[:, :, group.index(h)], expected), (g, h)


def test_p4_regular_action_is_rotate_and_roll() -> None:
    """DESIGN.md: a quarter turn rotates each map and rolls the group axis by +1."""
    f = torch.randn(2, 3, 4, 5, 7)
    for r in range(4):
        expected = torch.rot90(f.roll(r, dims=2), r, dims=(-2, -1))
        assert torch.equal(act_on_group_maps(f, (r, 0), P4), expected), r


def test_regular_permutation_is_a_permutation() -> None:
    for group in GROUPS:
        for g in group.elements:
            assert sorted(group.regular_permutation(g)) == list(range(group.order)), g


def test_get_group() -> None:
    assert get_group("p4") is P4 and get_group("p4m") is P4M and get_group("z2") is Z2
    with pytest.raises(ValueError, match="unknown group 'c4'"):
        get_group("c4")


def test_act_on_group_maps_rejects_wrong_group_size() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, G, H, W\).*\(2, 3, 8, 5, 7\)"):
        act_on_group_maps(torch.zeros(2, 3, 8, 5, 7), (1, 0), P4)
