"""DSEN / SDSEN: config, shapes, parameter counts, equivariance, input checks, summary."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from sdsen.equivariance import assert_equivariant, equivariance_error
from sdsen.gconv import P4, P4M
from sdsen.models import DSEN, SDSEN, ModelConfig, build_model, summary, to_equivariant_decoder
from sdsen.models.summary import receptive_field

TINY = {"channels": 2, "stages": 3, "blocks": 2}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- config ---------------------------------------------------------------------------------


def test_config_defaults_are_official_and_round_trip() -> None:
    cfg = ModelConfig()
    assert (cfg.channels, cfg.stages, cfg.blocks, cfg.kernel_size) == (10, 8, 4, 5)
    assert (cfg.group, cfg.se, cfg.decoder, cfg.links, cfg.arch) == (
        "p4",
        True,
        "official",
        True,
        "sdsen",
    )
    for c in (cfg, ModelConfig(group="z2", arch="dsen", z2_channels=7, flip_channels=True)):
        d = json.loads(json.dumps(dataclasses.asdict(c)))
        assert ModelConfig(**d) == c
    assert build_model(dataclasses.asdict(cfg)).config == cfg


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"group": "p6"}, "group"),
        ({"decoder": "fancy"}, "decoder"),
        ({"arch": "prenet"}, "arch"),
        ({"channels": 0}, "channels"),
        ({"stages": 2.5}, "stages"),
        ({"kernel_size": 4}, "odd"),
        ({"se": "yes"}, "se"),
        ({"z2_channels": -1}, "z2_channels"),
        ({"group": "z2", "decoder": "equivariant"}, "equivariant"),
    ],
)
def test_config_validation(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kw)


def test_dsen_config_is_one_stage_without_links() -> None:
    cfg = ModelConfig(arch="DSEN", stages=5)
    assert (cfg.arch, cfg.stages, cfg.links) == ("dsen", 1, False)
    with pytest.raises(ValueError, match="build_model"):
        SDSEN(cfg)


# --- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "group, decoder",
    [
        ("p4", "official"),
        ("p4", "equivariant"),
        ("p4m", "official"),
        ("p4m", "equivariant"),
        ("z2", "official"),
    ],
)
@pytest.mark.parametrize("arch", ["sdsen", "dsen"])
def test_forward_shapes_odd_non_square(group: str, decoder: str, arch: str) -> None:
    model = build_model(ModelConfig(group=group, decoder=decoder, arch=arch, **TINY))
    assert type(model) is (SDSEN if arch == "sdsen" else DSEN)
    x = torch.rand(2, 3, 13, 8)
    rains = model(x)
    assert len(rains) == (3 if arch == "sdsen" else 1)
    assert all(r.shape == x.shape for r in rains)
    assert torch.equal(model.derain(x), x - rains[-1])
    sum(r.square().mean() for r in rains).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_no_se_and_no_links_variants() -> None:
    model = SDSEN(channels=2, stages=2, blocks=2, se=False, links=False)
    assert not any(k.startswith(("connect_layers", "dec.1")) for k in model.state_dict())
    assert model(torch.rand(1, 3, 9, 7))[1].shape == (1, 3, 9, 7)


# --- parameter counts -----------------------------------------------------------------------


@pytest.mark.parametrize("arch, official", [("sdsen", 130_998), ("dsen", 50_958)])
def test_parameter_counts_and_z2_match(arch: str, official: int) -> None:
    p4 = n_params(build_model(ModelConfig(arch=arch)))
    assert p4 == official
    assert n_params(build_model(ModelConfig(arch=arch, decoder="equivariant"))) == official
    z2 = n_params(build_model(ModelConfig(arch=arch, group="z2")))
    assert abs(z2 - p4) / p4 < 0.05, (z2, p4)


# --- equivariance ---------------------------------------------------------------------------


@pytest.mark.parametrize("group", [P4, P4M])
@pytest.mark.parametrize("arch", ["sdsen", "dsen"])
def test_equivariant_decoder_every_stage_every_element(group, arch: str) -> None:
    cfg = ModelConfig(group=group.name, decoder="equivariant", arch=arch, **TINY)
    model = build_model(cfg).double()
    x = torch.rand(1, 3, 11, 8, dtype=torch.float64)
    # R_t(T_g x) = T_g R_t(x) for every stage t ('planes': the list of rain layers); the issue
    # asks for 1e-5, float64 round-off is ~1e-16, so a tiny non-equivariant term is caught too
    errors = assert_equivariant(model, x, group, "plane", "planes", atol=1e-10)
    assert len(errors) == group.order


@pytest.mark.parametrize("group", [P4, P4M])
def test_official_decoder_is_not_equivariant(group) -> None:
    model = build_model(ModelConfig(group=group.name, **TINY)).double()
    x = torch.rand(1, 3, 11, 8, dtype=torch.float64)
    errors = equivariance_error(model, x, group, "plane", "planes", elements=[(1, 0)])
    assert errors[(1, 0)] > 1e-3, errors


def test_equivariance_float32_tolerance() -> None:
    model = SDSEN(decoder="equivariant", **TINY)
    assert_equivariant(model, torch.rand(1, 3, 11, 8), P4, "plane", "planes", atol=1e-4)


# --- input checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(1, 4, 8, 8), "3 colour channels"),
        (torch.rand(1, 8, 8, 3), "channels last"),
        (torch.rand(3, 8, 8), "x\\[None\\]"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), "dtype"),
        (torch.rand(1, 3, 8, 8) * 255, "divide by 255"),
        (torch.full((1, 3, 8, 8), -1.0), "range"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
    ],
)
def test_input_checks(bad: torch.Tensor, match: str) -> None:
    model = DSEN(channels=2)
    with pytest.raises(ValueError, match=match):
        model(bad)
    with pytest.raises(ValueError, match=match):
        model.derain(bad)


def test_input_dtype_must_match_the_weights_outside_autocast() -> None:
    model = DSEN(channels=2)
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"torch.float16 but the model's weights are torch.float32"):
        model(x.half())
    with pytest.raises(ValueError, match=r"model.to\(torch.float64\)"):
        model.derain(x.double())
    assert model.double()(x.double())[0].dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.float()(x)[0].dtype == torch.bfloat16


def test_slightly_out_of_range_input_is_accepted() -> None:
    x = torch.rand(1, 3, 8, 8) * 1.2 - 0.1
    assert DSEN(channels=2)(x)[0].shape == x.shape


def test_flip_channels_flips_in_and_out() -> None:
    a = SDSEN(**TINY)
    b = SDSEN(flip_channels=True, **TINY)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 9, 6)
    for ra, rb in zip(a(x), b(x.flip(1))):
        assert torch.equal(ra, rb.flip(1))


# --- summary --------------------------------------------------------------------------------


def test_summary_matches_hand_count_official() -> None:
    c, k2, h, w = 10, 25, 16, 12
    pre = 4 * c * 3 * k2  # P4ConvZ2: 40 outputs x 3 inputs x 25
    block = 4 * c * (2 * c * 4) * k2  # P4ConvP4 2C -> C: 40 outputs x 80 inputs x 25
    link = 4 * c * (c * 4) * k2  # P4ConvP4 C -> C
    dec = c * 4 * c * k2 + 3 * c  # Conv2d(40 -> 10, 5x5) + Conv2d(10 -> 3, 1x1)
    se = 2 * c * (c // 2)  # two Linear maps, once per image
    stage = pre + 4 * block + dec
    # stage 0's links act on zeros: their output is LeakyReLU(bias), not computed
    hand = 8 * stage + 7 * 4 * link
    s = summary(SDSEN(), image_size=(h, w))
    assert s.parameters == 130_998
    assert s.macs == hand * h * w + 8 * se
    assert hand == 3_784_240  # conv MACs per pixel, 8 stages; the official code adds 160,000
    assert abs(s.macs_per_pixel - hand) < 10  # the SE maps add 800 / (H W)
    assert s.receptive_field == 96
    dsen_stage = pre + 4 * link + dec  # DSEN blocks are C -> C, no links
    assert summary(DSEN(), image_size=(h, w)).macs == dsen_stage * h * w + se


def test_receptive_field_of_stage_outputs() -> None:
    assert receptive_field(ModelConfig()) == [12 * (t + 1) for t in range(8)]
    assert receptive_field(ModelConfig(arch="dsen")) == [12]
    # an impulse just outside the field leaves the output unchanged (tiny model, k = 3; the SE
    # block pools over the whole image, so it is off here)
    model = SDSEN(channels=2, stages=2, blocks=2, kernel_size=3, se=False).double().eval()
    rad = receptive_field(model.config)[-1]
    assert rad == 8
    x = torch.full((1, 3, 31, 31), 0.5, dtype=torch.float64)
    y = x.clone()
    y[..., 15, 15 + rad + 1] = 1.0
    z = x.clone()
    z[..., 15, 15 + rad] = 1.0
    with torch.no_grad():
        base = model(x)[-1][..., 15, 15]
        assert torch.equal(model(y)[-1][..., 15, 15], base)
        assert not torch.equal(model(z)[-1][..., 15, 15], base)


# --- the official decoder made equivariant (sdsen.models.symmetrize) -------------------------


@pytest.mark.parametrize("group", [P4, P4M])
def test_equivariant_decoder_from_official_keeps_the_identity_branch(group) -> None:
    torch.manual_seed(0)
    official = build_model(ModelConfig(group=group.name, **TINY)).double()
    model = to_equivariant_decoder(official)
    assert model.config == dataclasses.replace(official.config, decoder="equivariant")
    # the group filters of the identity element are the official filters, bit for bit
    g = group.order
    expanded = model.dec[0].conv2d_weight()  # (C_out * G, C_in * G, k, k)
    assert torch.equal(expanded[::g], official.dec[0].weight)
    # every other tensor is the source's; the source is unchanged
    same = {k: v for k, v in official.state_dict().items() if not k.startswith("dec.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in same.items())
    assert torch.equal(model.dec[4].weight, official.dec[3].weight)
    # and the model is equivariant at every stage
    x = torch.rand(1, 3, 11, 8, dtype=torch.float64)
    assert_equivariant(model, x, group, "plane", "planes", atol=1e-10)
    # its identity branch is the official decoder's first convolution (same weights, same input)
    h = torch.rand(1, TINY["channels"], g, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(model.dec[0](h)[:, :, 0], official.dec[0](h.flatten(1, 2)),
                               rtol=0, atol=1e-14)


def test_equivariant_decoder_from_official_refuses_other_models() -> None:
    with pytest.raises(ValueError, match="decoder='official'"):
        to_equivariant_decoder(build_model(ModelConfig(decoder="equivariant", **TINY)))
    with pytest.raises(ValueError, match="group='z2'"):
        to_equivariant_decoder(build_model(ModelConfig(group="z2", **TINY)))
