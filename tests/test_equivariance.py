"""The equivariance checker of ``sdsen.equivariance``, tested on modules that are and are not
equivariant (a checker that cannot fail checks nothing)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sdsen.equivariance import act, assert_equivariant, equivariance_error
from sdsen.gconv import P4, P4M, P4ConvP4, P4ConvZ2, group_pool

# tiny tensors: intra-op threads only add synchronisation (and stall on a busy machine)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_plain_conv2d_is_not_equivariant() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 9, 6)
    with pytest.raises(AssertionError, match=r"g=\(1, 0\) \(index 1\)") as info:
        assert_equivariant(conv, x, P4, "plane", "plane", atol=1e-5)
    message = str(info.value)
    assert "p4" in message and "3 of 4 elements" in message
    assert "g=(0, 0)" not in message  # the identity always commutes


def test_errors_of_plain_conv2d() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    errors = equivariance_error(conv, torch.randn(2, 3, 9, 6), P4M, "plane", "plane")
    assert list(errors) == P4M.elements
    assert errors[(0, 0)] == 0.0
    assert all(e > 1e-3 for g, e in errors.items() if g != (0, 0))


def test_group_layer_passes_and_returns_errors() -> None:
    layer = P4ConvZ2(3, 4, 3, padding=1)
    errors = assert_equivariant(layer, torch.randn(2, 3, 9, 6), P4, "plane", "group", 1e-5)
    assert set(errors) == set(P4.elements) and max(errors.values()) <= 1e-5


def test_wrong_output_action_is_caught() -> None:
    """Rotating the maps without permuting the group axis is not the regular action."""
    layer = P4ConvZ2(3, 4, 3, padding=1)
    with pytest.raises(AssertionError, match=r"g=\(1, 0\)"):
        assert_equivariant(layer, torch.randn(1, 3, 9, 6), P4, "plane", "plane", 1e-5)


def test_lifting_layer_is_not_p4m_equivariant() -> None:
    # p4 filters rotated only: a mirror maps them onto filters the layer does not have
    layer = P4ConvZ2(3, 4, 3, padding=1)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return group_pool(layer(x))

    errors = equivariance_error(fn, torch.randn(1, 3, 9, 6), P4M, "plane", "plane")
    assert max(errors[g] for g in P4.elements) < 1e-5
    assert min(errors[(r, 1)] for r in range(4)) > 1e-3


def test_relative_error_divides_by_the_largest_output() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 9, 6)
    absolute = equivariance_error(conv, x, P4, "plane", "plane")
    relative = equivariance_error(conv, x, P4, "plane", "plane", relative=True)
    with torch.no_grad():
        peak = float(conv(x).abs().max())
    assert relative == pytest.approx({g: e / peak for g, e in absolute.items()})
    # scaling the module scales the absolute error, not the relative one
    with torch.no_grad():
        conv.weight.mul_(1e3)
        conv.bias.mul_(1e3)
    scaled = equivariance_error(conv, x, P4, "plane", "plane", relative=True)
    assert scaled == pytest.approx(relative, rel=1e-4)
    zero = equivariance_error(torch.zeros_like, x, P4, "plane", "plane", relative=True)
    assert zero == {g: 0.0 for g in P4.elements}  # max |fn(x)| = 0: nothing to divide by


def test_shape_mismatch_is_infinite_error() -> None:

    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., :4, :]  # a quarter turn changes which axis gets cropped

    errors = equivariance_error(crop, torch.randn(1, 1, 6, 5), P4, "plane", "plane")
    assert errors[(1, 0)] == float("inf")
    with pytest.raises(AssertionError, match="inf"):
        assert_equivariant(crop, torch.randn(1, 1, 6, 5), P4, "plane", "plane", 1e-5)


def test_subset_of_elements() -> None:
    conv = nn.Conv2d(1, 1, 3, padding=1)
    errors = equivariance_error(conv, torch.randn(1, 1, 5, 4), P4, "plane", "plane", [(0, 0)])
    assert errors == {(0, 0): 0.0}


def test_planes_kind_for_a_list_of_stage_outputs() -> None:
    layer = P4ConvZ2(3, 2, 3, padding=1)
    conv = P4ConvP4(2, 3, 3, padding=1)

    def stages(x: torch.Tensor) -> list[torch.Tensor]:
        h = layer(x)
        return [group_pool(h), group_pool(conv(h), "mean")]

    x = torch.randn(2, 3, 8, 5)
    assert_equivariant(stages, x, P4, "plane", "planes", 1e-5)

    def broken(x: torch.Tensor) -> list[torch.Tensor]:
        return [*stages(x), x[:, :1] + x[:, :1, :1]]

    with pytest.raises(AssertionError):
        assert_equivariant(broken, x, P4, "plane", "planes", 1e-5)


def test_invariant_kind() -> None:
    layer = P4ConvZ2(3, 2, 3, padding=1)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return group_pool(layer(x)).mean(dim=(-2, -1))

    assert_equivariant(fn, torch.randn(2, 3, 8, 5), P4, "plane", "invariant", 1e-5)
    with pytest.raises(AssertionError):
        assert_equivariant(
            lambda x: x[..., 0, 0], torch.randn(1, 1, 4, 3), P4, "plane", "invariant", 1e-5
        )


def test_float64_tolerance() -> None:
    layer = P4ConvP4(2, 3, 5, padding=2).double()
    x = torch.randn(1, 2, 4, 7, 6, dtype=torch.float64)
    errors = assert_equivariant(layer, x, P4, "group", "group", 1e-10)
    assert max(errors.values()) < 1e-12


def test_act_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown kind 'planar'"):
        act(torch.zeros(1, 1, 2, 2), (1, 0), P4, "planar")  # type: ignore[arg-type]


def test_checker_runs_without_grad() -> None:
    layer = P4ConvZ2(1, 1, 3, padding=1)
    seen: list[bool] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_grad_enabled())
        return layer(x)

    equivariance_error(fn, torch.randn(1, 1, 5, 4), P4, "plane", "group")
    assert seen and not any(seen)
