"""Tests for the group-convolution layers of ``sdsen.gconv``.

Fixtures (GrouPy's own outputs), equivariance of every layer under every group element
(property-based), gradients, the eval-mode filter cache and input validation.
"""

from __future__ import annotations

import filecmp
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

from sdsen.equivariance import assert_equivariant
from sdsen.gconv import (
    P4,
    P4M,
    GroupConv2d,
    P4ConvP4,
    P4ConvZ2,
    P4MConvP4M,
    P4MConvZ2,
    act_on_group_maps,
    act_on_plane,
    expand_filters,
    group_max_pool2d,
    group_pool,
    plane_group_spatial_max_pooling,
    transform_filters,
)
from sdsen.gconv import groups as groups_module
from sdsen.gconv import layers as layers_module

# tiny tensors: intra-op threads only add synchronisation (and stall on a busy machine)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURE = REPO.parent / "shared" / "fixtures" / "groupy_reference.npz"
LOCAL_FIXTURE = REPO / "tests" / "fixtures" / "groupy_reference.npz"
FIXTURE = SHARED_FIXTURE if SHARED_FIXTURE.exists() else LOCAL_FIXTURE

LAYERS = {
    "P4ConvZ2": P4ConvZ2,
    "P4ConvP4": P4ConvP4,
    "P4MConvZ2": P4MConvZ2,
    "P4MConvP4M": P4MConvP4M,
}
FIXTURE_CASES = [(name, k, s) for name in LAYERS for k in (3, 5) for s in (1, 2)]


@pytest.fixture(scope="module")
def groupy() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


def test_fixture_copy_is_byte_identical() -> None:
    if not SHARED_FIXTURE.exists():
        pytest.skip(f"no shared fixture at {SHARED_FIXTURE}")
    assert filecmp.cmp(SHARED_FIXTURE, LOCAL_FIXTURE, shallow=False)


def test_fixture_has_sixteen_cases(groupy: dict[str, np.ndarray]) -> None:
    keys = {
        f"{n}_k{k}_s{s}_{part}"
        for n, k, s in FIXTURE_CASES
        for part in ("input", "weight", "bias", "output")
    }
    assert keys == set(groupy)


@pytest.mark.parametrize(
    ("name", "k", "stride"), FIXTURE_CASES, ids=[f"{n}_k{k}_s{s}" for n, k, s in FIXTURE_CASES]
)
def test_matches_groupy(groupy: dict[str, np.ndarray], name: str, k: int, stride: int) -> None:
    key = f"{name}_k{k}_s{stride}"
    weight = torch.from_numpy(groupy[f"{key}_weight"])
    x = torch.from_numpy(groupy[f"{key}_input"])
    layer = LAYERS[name](weight.shape[1], weight.shape[0], k, stride=stride, padding=k // 2)
    assert layer.weight.shape == weight.shape
    layer.load_state_dict({"weight": weight, "bias": torch.from_numpy(groupy[f"{key}_bias"])})
    with torch.no_grad():
        out = layer(x).numpy()
    expected = groupy[f"{key}_output"]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- constructor, shapes

LAYER_SPECS = [  # (class, group, input kind, G_in)
    (P4ConvZ2, P4, "plane", 1),
    (P4ConvP4, P4, "group", 4),
    (P4MConvZ2, P4M, "plane", 1),
    (P4MConvP4M, P4M, "group", 8),
]
SPEC_IDS = [spec[0].__name__ for spec in LAYER_SPECS]


def _input(in_kind: str, batch: int, c: int, g_in: int, h: int, w: int, **kw) -> torch.Tensor:
    shape = (batch, c, h, w) if in_kind == "plane" else (batch, c, g_in, h, w)
    return torch.randn(*shape, **kw)


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
def test_shapes_and_groupy_initialisation(cls, group, in_kind, g_in) -> None:
    torch.manual_seed(7)
    layer = cls(3, 5, 5, padding=2)
    assert layer.weight.shape == (5, 3, g_in, 5, 5) and layer.bias.shape == (5,)
    assert (layer.ksize, layer.input_stabilizer_size, layer.output_stabilizer_size) == (
        5,
        g_in,
        group.order,
    )
    # GrouPy's SplitGConv2D.reset_parameters: bound 1/sqrt(C_in * k * k), G_in not counted;
    # weight drawn first, then bias, so the same seed gives the same values
    bound = 1 / math.sqrt(3 * 25)
    torch.manual_seed(7)
    weight = torch.empty(5, 3, g_in, 5, 5).uniform_(-bound, bound)
    bias = torch.empty(5).uniform_(-bound, bound)
    assert torch.equal(layer.weight.data, weight) and torch.equal(layer.bias.data, bias)
    assert layer.weight.abs().max() > 0.9 * bound  # the bound is reached, not a smaller one
    y = layer(_input(in_kind, 2, 3, g_in, 9, 6))
    assert y.shape == (2, 5, group.order, 9, 6)
    assert cls(3, 5, 3, stride=2, padding=1)(_input(in_kind, 1, 3, g_in, 9, 6)).shape == (
        1,
        5,
        group.order,
        5,
        3,
    )


def test_groupy_positional_arguments() -> None:
    """GrouPy's order: in, out, kernel_size=3, stride=1, padding=0, bias=True (dilation after)."""
    layer = P4ConvZ2(3, 10, 5, 1, 2, False)
    assert layer.bias is None and layer.padding == (2, 2) and layer.dilation == (1, 1)
    assert P4ConvP4(2, 2).kernel_size == (3, 3)


def test_plain_conv2d_path() -> None:
    layer = P4ConvP4(3, 2, 3, padding=1)
    x = torch.randn(2, 3, 4, 7, 5)
    w, b = layer.conv2d_params()
    expected = F.conv2d(x.flatten(1, 2), w, b, padding=1)  # bias inside: rounds differently
    torch.testing.assert_close(layer(x).flatten(1, 2), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
def test_transformed_filters(cls, group, in_kind, g_in) -> None:
    layer = cls(3, 2, 5)
    bank = layer.transformed_filters()
    assert bank.shape == (2, group.order, 3, g_in, 5, 5)
    assert not bank.requires_grad
    w = layer.weight.detach()
    for g in group.elements:
        moved = act_on_plane(w, g) if g_in == 1 else act_on_group_maps(w, g, group)
        assert torch.equal(bank[:, group.index(g)], moved), g


def _groupy_element(m: int, r: int, u: int = 0, v: int = 0) -> np.ndarray:
    """GrouPy's p4m element ``(m, r, u, v)`` as a 3x3 integer matrix acting on ``(u, v, 1)``
    (u: row, v: column; m = 0 gives the p4 element ``(r, u, v)``)."""
    c, s = round(math.cos(math.pi / 2 * r)), round(math.sin(math.pi / 2 * r))
    f = (-1) ** m
    return np.array([[f * c, -f * s, u], [s, c, v], [0, 0, 1]])


def _groupy_index_table(g_in: int, g_out: int, k: int) -> np.ndarray:
    """GrouPy's filter index table ``(G, G_in, k, k, 3)``, written here from its definition:
    entry ``[t, s, i, j]`` is where ``g_t^-1`` sends the weight coordinate ``(s, u_i, v_j)``
    (plane index, row, column); even p4 kernels rotate about the half-pixel centre, as in
    GrouPy's ``C4_halfshift``."""
    lo = -(k // 2)
    if g_out == 4 and k % 2 == 0:  # rotations about (-1/2, -1/2): extra translations
        outs = [_groupy_element(0, r, u, v) for r, u, v in [(0, 0, 0), (1, -1, 0), (2, -1, -1),
                                                             (3, 0, -1)]]
    else:
        outs = [_groupy_element(m, r) for m in range(g_out // 4) for r in range(4)]
    table = np.zeros((g_out, g_in, k, k, 3), dtype=np.int64)
    for t, g in enumerate(outs):
        g_inv = np.rint(np.linalg.inv(g)).astype(np.int64)
        for s in range(g_in):
            for i in range(k):
                for j in range(k):
                    m0, r0 = divmod(s, 4)
                    h = g_inv @ _groupy_element(m0, r0 if g_in > 1 else 0, lo + i, lo + j)
                    m = int(round(np.linalg.det(h[:2, :2])) == -1)
                    r = round(math.atan2(h[1, 0], h[1, 1]) / (math.pi / 2)) % 4
                    plane = 4 * m + r if g_in > 1 else 0
                    table[t, s, i, j] = (plane, h[0, 2] - lo, h[1, 2] - lo)
    return table


GATHER_CASES = [  # GrouPy has no even p4m kernels (it asserts an odd size)
    (*spec, k) for spec in LAYER_SPECS for k in (1, 2, 3, 4, 5, 7) if spec[1] is P4 or k % 2
]


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in", "k"), GATHER_CASES,
                         ids=[f"{c[0].__name__}-k{c[4]}" for c in GATHER_CASES])
def test_filter_bank_equals_groupys_index_gather(cls, group, in_kind, g_in, k) -> None:
    """GrouPy builds the bank by gathering weights with an index table; ours rotates, flips and
    rolls. The two must agree exactly."""
    layer = cls(2, 3, k)
    w = layer.weight.detach()
    idx = torch.from_numpy(_groupy_index_table(g_in, group.order, k))
    gathered = w[:, :, idx[..., 0], idx[..., 1], idx[..., 2]]  # (C_out, C_in, G, G_in, k, k)
    assert torch.equal(layer.transformed_filters(), gathered.transpose(1, 2))


def test_transformed_filters_follow_design_conventions() -> None:
    """DESIGN.md section 1: p4 slice r is rot90(w.roll(r, 2), r); p4m slice 4 + r mirrors."""
    layer = P4ConvP4(2, 3, 5)
    w, bank = layer.weight.detach(), layer.transformed_filters()
    for r in range(4):
        assert torch.equal(bank[:, r], torch.rot90(w.roll(r, dims=2), r, dims=(-2, -1))), r
    layer = P4MConvZ2(2, 3, 5)
    w, bank = layer.weight.detach(), layer.transformed_filters()
    for r in range(4):
        assert torch.equal(bank[:, r], torch.rot90(w, r, dims=(-2, -1))), r
        assert torch.equal(bank[:, 4 + r], torch.rot90(w, r, dims=(-2, -1)).flip(-2)), r


def test_expand_filters_layout() -> None:
    w = torch.randn(2, 3, 4, 3, 3)
    expanded = expand_filters(w, P4, 4)
    bank = transform_filters(w, P4, 4)
    assert expanded.shape == (8, 12, 3, 3)
    assert torch.equal(expanded[1 * 4 + 2, 2 * 4 + 3], bank[1, 2, 2, 3])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        (P4ConvP4(3, 2, 3), (1, 3, 8, 8), "(B, C, G, H, W) = (B, 3, 4, H, W) or (B, C * G, H, W) = (B, 12, H, W)"),
        (P4ConvP4(3, 2, 3), (1, 3, 8, 8, 8), "(B, C, G, H, W) = (B, 3, 4, H, W)"),
        (P4ConvP4(3, 2, 3), (1, 2, 4, 8, 8), "(B, C, G, H, W) = (B, 3, 4, H, W)"),
        (P4MConvP4M(3, 2, 3), (1, 3, 4, 8, 8), "(B, C, G, H, W) = (B, 3, 8, H, W)"),
        (P4MConvP4M(3, 2, 3), (3, 8, 8, 8), "(B, C, G, H, W) = (B, 3, 8, H, W) or (B, C * G, H, W) = (B, 24, H, W)"),
        (P4ConvZ2(3, 2, 3), (1, 3, 4, 8, 8), "(B, C, H, W) = (B, 3, H, W) or (B, C, 1, H, W) = (B, 3, 1, H, W)"),
        (P4MConvZ2(3, 2, 3), (3, 8, 8), "(B, C, H, W) = (B, 3, H, W) or (B, C, 1, H, W) = (B, 3, 1, H, W)"),
    ],
    ids=["p4-4d", "p4-G8", "p4-channels", "p4m-G4", "p4m-4d", "z2-5d", "z2-3d"],
)
def test_bad_input_names_expected_and_passed_shape(layer, shape, expected) -> None:
    message = re.escape(expected) + ".*" + re.escape(f"got {shape}")
    with pytest.raises(ValueError, match=f"{type(layer).__name__} expects an input of shape {message}"):
        layer(torch.zeros(shape))


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
def test_accepts_groupys_flattened_shapes(cls, group, in_kind, g_in) -> None:
    """GrouPy views its input as (B, C_in * G_in, H, W): both spellings give the same output."""
    layer = cls(3, 2, 3, padding=1)
    x = torch.randn(2, 3, g_in, 7, 6)
    other = x.flatten(1, 2) if in_kind == "group" else x  # planar: (B, C, 1, H, W)
    main = x if in_kind == "group" else x[:, :, 0]
    assert torch.equal(layer(other), layer(main))


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
def test_bias_is_added_after_the_convolution_as_groupy_does(cls, group, in_kind, g_in) -> None:
    """Bit-equal to GrouPy's ``conv2d(x, tw, bias=None) + bias.view(1, C_out, 1, 1, 1)``; a bias
    inside ``conv2d`` rounds differently (measured: 1.5e-5 on a 7x7 P4MConvP4M)."""
    torch.manual_seed(0)
    layer = cls(3, 2, 7, padding=0)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
        x = torch.randn(3, 3 * g_in, 13, 11)
        y = F.conv2d(x, layer.conv2d_weight(), None).unflatten(1, (2, group.order))
        expected = y + layer.bias.view(1, 2, 1, 1, 1)
        assert torch.equal(layer(x), expected)  # no graph: added in place
    assert torch.equal(layer(x), expected)  # with autograd: out of place, same values
    layer(x.requires_grad_()).sum().backward()
    assert torch.equal(layer.bias.grad, torch.full((2,), float(3 * group.order * 7 * 5)))


def test_bias_add_keeps_autocast_precision() -> None:
    layer = P4ConvZ2(3, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16
        with torch.no_grad():
            assert layer(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        P4ConvP4(0, 2, 3)
    with pytest.raises(ValueError, match="in_group_order must be 1 or 4"):
        GroupConv2d(2, 2, 3, group=P4, in_group_order=8)
    with pytest.raises(ValueError, match=r"\(C_out, C_in, 4, k, k\)"):
        transform_filters(torch.zeros(2, 2, 1, 3, 3), P4, 4)
    with pytest.raises(ValueError, match=r"square filters.*\(3, 5\)"):
        P4ConvZ2(2, 2, (3, 5))


# --------------------------------------------------------------------------- equivariance

DTYPES = [
    pytest.param(torch.float32, 1e-5, id="float32"),
    pytest.param(torch.float64, 1e-10, id="float64"),
]
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
sizes = st.integers(min_value=3, max_value=10)
channels = st.integers(min_value=1, max_value=4)


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize(("dtype", "atol"), DTYPES)
@SETTINGS
@given(
    c_in=channels,
    c_out=channels,
    k=st.sampled_from([1, 3, 5]),
    h=sizes,
    w=sizes,
    batch=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
@example(c_in=2, c_out=3, k=5, h=8, w=5, batch=1, seed=0)  # even x odd
@example(c_in=3, c_out=2, k=3, h=7, w=11, batch=2, seed=1)  # odd x odd
@example(c_in=1, c_out=1, k=1, h=6, w=4, batch=1, seed=2)  # even x even, 1x1 kernel
def test_layer_commutes_with_every_element(
    cls, group, in_kind, g_in, dtype, atol, c_in, c_out, k, h, w, batch, seed
) -> None:
    torch.manual_seed(seed)
    layer = cls(c_in, c_out, k, padding=k // 2).to(dtype).eval()  # eval: filters built once
    x = _input(in_kind, batch, c_in, g_in, h, w, dtype=dtype)
    assert_equivariant(layer, x, group, in_kind, "group", atol)


@pytest.mark.parametrize(
    ("group", "lift", "conv"),
    [(P4, P4ConvZ2, P4ConvP4), (P4M, P4MConvZ2, P4MConvP4M)],
    ids=["p4", "p4m"],
)
@pytest.mark.parametrize(("dtype", "atol"), DTYPES)
@SETTINGS
@given(
    c=channels,
    k=st.sampled_from([1, 3, 5]),
    h=sizes,
    w=sizes,
    depth=st.integers(2, 3),
    seed=st.integers(0, 2**16),
)
def test_stack_of_layers_is_equivariant(
    group, lift, conv, dtype, atol, c, k, h, w, depth, seed
) -> None:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [lift(3, c, k, padding=k // 2), nn.LeakyReLU(0.2)]
    for i in range(depth - 1):
        layers += [conv(c, c, k, padding=k // 2), nn.ReLU() if i % 2 else nn.Tanh()]
    net = nn.Sequential(*layers).to(dtype).eval()
    x = torch.randn(2, 3, h, w, dtype=dtype)
    assert_equivariant(net, x, group, "plane", "group", atol)
    # group pooling at the end: an invariant-channel image, moved by T_g only
    pooled = nn.Sequential(net, _GroupPool("mean"))
    assert_equivariant(pooled, x, group, "plane", "plane", atol)


class _GroupPool(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return group_pool(x, self.mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("group", [P4, P4M], ids=["p4", "p4m"])
@pytest.mark.parametrize("mode", ["max", "mean"])
@pytest.mark.parametrize(("dtype", "atol"), DTYPES)
@SETTINGS
@given(c=channels, h=sizes, w=sizes)
def test_group_pool_is_invariant(group, mode, dtype, atol, c, h, w) -> None:
    """``pool(L_g f) = T_g pool(f)``: channels invariant, pixels moved."""
    f = torch.randn(2, c, group.order, h, w, dtype=dtype)
    assert_equivariant(lambda t: group_pool(t, mode), f, group, "group", "plane", atol)
    reduce = {"max": lambda t: t.amax(dim=2), "mean": lambda t: t.mean(dim=2)}[mode]
    torch.testing.assert_close(group_pool(f, mode), reduce(f), rtol=0, atol=atol)


@pytest.mark.parametrize("group", [P4, P4M], ids=["p4", "p4m"])
def test_spatial_max_pool_is_equivariant_on_even_sizes(group) -> None:
    f = torch.randn(2, 3, group.order, 8, 6)

    def pool(t: torch.Tensor) -> torch.Tensor:
        return group_max_pool2d(t, 2)

    assert pool(f).shape == (2, 3, group.order, 4, 3)
    assert_equivariant(pool, f, group, "group", "group", 0.0)
    # each plane max-pooled on its own
    expected = F.max_pool2d(f.flatten(1, 2), 2).unflatten(1, (3, group.order))
    assert torch.equal(pool(f), expected)
    # GrouPy's name and keywords give the same maps
    assert torch.equal(plane_group_spatial_max_pooling(f, ksize=3, stride=2, pad=1),
                       group_max_pool2d(f, 3, 2, 1))


def test_stride_two_is_equivariant_on_odd_sizes_only() -> None:
    layer = P4ConvP4(2, 3, 3, stride=2, padding=1)
    assert_equivariant(layer, torch.randn(1, 2, 4, 9, 7), P4, "group", "group", 1e-5)
    with pytest.raises(AssertionError):
        assert_equivariant(layer, torch.randn(1, 2, 4, 8, 6), P4, "group", "group", 1e-5)


def test_dilation_with_same_padding_is_equivariant() -> None:
    layer = P4MConvZ2(2, 3, 3, padding=2, dilation=2)
    assert_equivariant(layer, torch.randn(1, 2, 9, 6), P4M, "plane", "group", 1e-5)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
def test_gradcheck(cls, group, in_kind, g_in) -> None:
    layer = cls(2, 2, 3, padding=1).double()
    x = _input(in_kind, 1, 2, g_in, 4, 3, dtype=torch.float64, requires_grad=True)
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()

    def fn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(fn, (x, weight, bias))


# --------------------------------------------------------------------------- eval-mode cache


def _fresh_output(layer: GroupConv2d, x: torch.Tensor) -> torch.Tensor:
    """Output of a newly built layer holding the same parameters (no cache involved)."""
    fresh = type(layer)(
        layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding
    ).to(layer.weight.dtype)
    fresh.load_state_dict(layer.state_dict())
    with torch.no_grad():
        return fresh(x)


def _eval_output(layer: GroupConv2d, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return layer(x)


@pytest.fixture
def cached_layer() -> tuple[P4ConvP4, torch.Tensor, torch.Tensor]:
    layer = P4ConvP4(3, 2, 3, padding=1).eval()
    x = torch.randn(2, 3, 4, 6, 5)
    out = _eval_output(layer, x)
    assert layer._cache is not None
    return layer, x, out


def _sgd_step(layer: GroupConv2d, x: torch.Tensor) -> None:
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, foreach=False)
    layer(x).square().sum().backward()
    opt.step()


def _adam_step(layer: GroupConv2d, x: torch.Tensor) -> None:
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, foreach=True)
    layer(x).square().sum().backward()
    opt.step()


def _load_state_dict(layer: GroupConv2d, x: torch.Tensor) -> None:
    other = P4ConvP4(3, 2, 3, padding=1)
    layer.load_state_dict(other.state_dict())


def _data_copy(layer: GroupConv2d, x: torch.Tensor) -> None:
    layer.weight.data.copy_(torch.randn_like(layer.weight))  # does not bump weight._version


def _data_inplace(layer: GroupConv2d, x: torch.Tensor) -> None:
    layer.weight.data[0, 0, 0, 1, 1] += 1.0


def _data_rebind(layer: GroupConv2d, x: torch.Tensor) -> None:
    layer.weight.data = torch.randn_like(layer.weight)


def _bias_only(layer: GroupConv2d, x: torch.Tensor) -> None:
    layer.bias.data.add_(1.0)


def _no_grad_inplace(layer: GroupConv2d, x: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.mul_(-1.0)


def _reset(layer: GroupConv2d, x: torch.Tensor) -> None:
    layer.reset_parameters()


def _train_step_and_back(layer: GroupConv2d, x: torch.Tensor) -> None:
    layer.train()
    _sgd_step(layer, x)
    layer.eval()


MUTATIONS = [
    _sgd_step,
    _adam_step,
    _load_state_dict,
    _data_copy,
    _data_inplace,
    _data_rebind,
    _bias_only,
    _no_grad_inplace,
    _reset,
    _train_step_and_back,
]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__.lstrip("_") for m in MUTATIONS])
def test_cache_never_serves_a_stale_filter(cached_layer, mutate) -> None:
    layer, x, before = cached_layer
    mutate(layer, x)
    after = _eval_output(layer, x)
    assert not torch.equal(after, before), "parameters changed but the output did not"
    assert torch.equal(after, _fresh_output(layer, x))


def test_cache_follows_dtype_and_device_moves(cached_layer) -> None:
    layer, x, before = cached_layer
    layer.to(torch.float64)
    after = _eval_output(layer, x.double())
    assert after.dtype == torch.float64
    assert torch.equal(after, _fresh_output(layer, x.double()))
    torch.testing.assert_close(after.float(), before)


def test_cache_is_reused(cached_layer, monkeypatch) -> None:
    layer, x, before = cached_layer
    calls = []
    real = layers_module.expand_filters
    monkeypatch.setattr(layers_module, "expand_filters", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        w1 = layer.conv2d_weight()
        w2 = layer.conv2d_weight()
        out = layer(x)
    assert w1 is w2
    assert torch.equal(out, before)
    assert calls == []
    with torch.inference_mode():
        layer(x)
    assert calls == []


def test_no_cache_in_training_mode() -> None:
    layer = P4ConvP4(3, 2, 3, padding=1)
    with torch.no_grad():
        w1 = layer.conv2d_weight()
        w2 = layer.conv2d_weight()
    assert w1 is not w2 and layer._cache is None


def test_train_and_eval_drop_the_cache(cached_layer) -> None:
    layer, x, before = cached_layer
    layer.train()
    assert layer._cache is None
    layer.eval()
    assert layer._cache is None
    assert torch.equal(_eval_output(layer, x), before)


def test_eval_with_grad_trains_the_weight(cached_layer) -> None:
    """In eval mode with autograd on, the filters are rebuilt so the weight gets a gradient."""
    layer, x, _ = cached_layer
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_frozen_weights_use_cache_and_pass_input_gradients() -> None:
    layer = P4ConvP4(3, 2, 3, padding=1).eval().requires_grad_(False)
    x = torch.randn(1, 3, 4, 5, 6)
    with torch.inference_mode():
        layer(x)  # cache built from inference tensors
    x.requires_grad_()
    layer(x).sum().backward()  # must not reuse inference tensors in autograd
    assert x.grad is not None
    w1 = layer.conv2d_weight()
    w2 = layer.conv2d_weight()
    assert w1 is w2


@pytest.mark.gpu
@pytest.mark.parametrize(("cls", "group", "in_kind", "g_in"), LAYER_SPECS, ids=SPEC_IDS)
def test_cuda_matches_cpu_and_cache_follows_the_move(cls, group, in_kind, g_in) -> None:
    # float64: no TF32 convolutions on the GPU, so tight tolerances hold
    layer = cls(3, 4, 5, padding=2).double().eval()
    x = _input(in_kind, 2, 3, g_in, 17, 12, dtype=torch.float64)
    cpu = _eval_output(layer, x)  # cache built on the CPU
    layer.cuda()
    gpu = _eval_output(layer, x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-10)
    layer.weight.data.mul_(-1.0)  # through .data: no version bump
    gpu = _eval_output(layer, x.cuda()).cpu()
    torch.testing.assert_close(gpu, _fresh_output(layer.cpu(), x), rtol=0, atol=1e-10)
    assert_equivariant(layer.cuda(), x.cuda(), group, in_kind, "group", 1e-10)


def test_training_after_a_first_call_in_inference_mode() -> None:
    """Cached helper tensors made under ``inference_mode`` must not poison autograd later."""
    groups_module._index_tensor.cache_clear()
    layer = P4MConvP4M(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 8, 5, 4)
    with torch.inference_mode():
        layer(x)
    layer(x).sum().backward()
    assert layer.weight.grad is not None
