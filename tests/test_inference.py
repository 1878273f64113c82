"""Tiled inference: agreement with the untiled forward, input / output conventions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from sdsen.gconv import GroupConv2d
from sdsen.models import SDSEN, build_model, default_overlap, derain_image, receptive_field
from sdsen.models.config import ModelConfig
from sdsen.models.inference import blend_window, tile_starts


def unit_gain(model: torch.nn.Module) -> torch.nn.Module:
    """Re-initialise convolutions with unit gain, so that context matters (GrouPy's uniform
    init makes the output of a random model nearly independent of distant pixels)."""
    for mod in model.modules():
        if isinstance(mod, (GroupConv2d, torch.nn.Conv2d)):
            with torch.no_grad():
                mod.weight.normal_(0, 1 / math.sqrt(mod.weight[0].numel()))
                mod.bias.normal_(0, 0.05)
    return model.eval()


def untiled(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return (x[None] - model(x[None])[-1])[0].clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a.double() - b.double()).square().mean()))


def smooth_image(h: int, w: int) -> torch.Tensor:
    x = torch.nn.functional.interpolate(
        torch.rand(1, 3, h // 8, w // 8), size=(h, w), mode="bilinear", align_corners=False
    )
    return (x[0] + 0.1 * torch.rand(3, h, w)).clamp(0, 1)


def test_tiles_cover_image_with_overlap() -> None:
    for length, tile, ov in [(1024, 512, 96), (768, 512, 96), (700, 256, 64), (100, 256, 96)]:
        starts = tile_starts(length, tile, ov)
        assert starts[0] == 0 and starts[-1] + min(tile, length) == length
        assert all(b - a <= tile - ov for a, b in itertools.pairwise(starts))
    w = blend_window(64, 32, True, True)
    assert w[:8].abs().max() == 0 and w[-8:].abs().max() == 0 and w[24:40].min() == 1
    assert torch.equal(blend_window(64, 32, False, False), torch.ones(64))


def test_default_overlap_from_receptive_field() -> None:
    assert default_overlap(SDSEN(channels=2)) == 96  # 8 stages x 12 pixels
    assert default_overlap(build_model(ModelConfig(arch="dsen", channels=2))) == 16


@pytest.mark.slow
def test_1024x768_default_tiles_match_untiled() -> None:
    # official receptive-field structure (8 stages, 4 blocks, 5x5: radius 96), narrow plain
    # convolutions to keep the test fast; SE off here (its statistics: next test)
    # (links never widen the field, see receptive_field: off to halve the time)
    cfg = ModelConfig(group="z2", z2_channels=2, se=False, links=False)
    assert receptive_field(cfg) == receptive_field(ModelConfig())
    model = unit_gain(build_model(cfg))
    x = smooth_image(768, 1024)
    full = untiled(model, x)
    tiled = derain_image(model, x)  # default tile 512, overlap 96: 3 x 2 tiles
    assert tiled.shape == x.shape and tiled.dtype == x.dtype
    assert psnr(tiled, full) >= 45.0
    assert psnr(full, x) < 40  # the model does change the image


def test_se_statistics_modes_with_default_overlap() -> None:
    # 8 stages with SE, 2 x 2 tiles: image-wide SE statistics (default) reach 45 dB; per-tile
    # statistics measurably do not do as well
    model = unit_gain(build_model(ModelConfig(group="z2", z2_channels=2)))
    x = smooth_image(176, 224)
    full = untiled(model, x)
    p_image = psnr(derain_image(model, x, tile=160), full)
    p_tile = psnr(derain_image(model, x, tile=160, se_stats="tile"), full)
    assert p_image >= 45.0 and p_image > p_tile + 3, (p_image, p_tile)


def test_exact_when_overlap_exceeds_receptive_field() -> None:
    # radius 6 (2 stages, 1 block, 3x3); the blend ignores overlap // 4 = 7 > 6 border pixels
    model = unit_gain(SDSEN(channels=2, stages=2, blocks=1, kernel_size=3, se=False)).double()
    x = torch.rand(3, 61, 47, dtype=torch.float64)
    assert (derain_image(model, x, tile=40, overlap=30) - untiled(model, x)).abs().max() < 1e-12
    # with SE, image-wide statistics get close; per-tile statistics are further off
    model = unit_gain(SDSEN(channels=2, stages=2, blocks=1, kernel_size=3)).double()
    full = untiled(model, x)
    err_image = (derain_image(model, x, tile=40, overlap=30) - full).abs().max()
    err_tile = (derain_image(model, x, tile=40, overlap=30, se_stats="tile") - full).abs().max()
    assert err_image < 1e-5 and err_image < err_tile / 10, (err_image, err_tile)


def test_p4_flip_stages_and_all_stages() -> None:
    cfg = ModelConfig(channels=2, stages=3, blocks=2, flip_channels=True)
    model = unit_gain(build_model(cfg))
    x = torch.rand(3, 40, 33)
    with torch.inference_mode():
        rains = model(x[None])
    outs = derain_image(model, x, tile=24, overlap=20, return_all=True)
    assert len(outs) == 3
    for t, out in enumerate(outs):
        assert psnr(out, (x - rains[t][0]).clamp(0, 1)) > 45, t
    assert torch.equal(derain_image(model, x, tile=24, overlap=20, stage=1), outs[1])
    assert model.training is False


def test_numpy_uint8_and_float_round_trip() -> None:
    model = SDSEN(channels=2, stages=2, blocks=1)
    model.train()
    img = (np.random.default_rng(0).random((21, 30, 3)) * 255).astype(np.uint8)
    out = derain_image(model, img, tile=16, overlap=8)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert model.training  # mode restored
    ref = derain_image(
        model, torch.from_numpy(img).permute(2, 0, 1).float() / 255, tile=16, overlap=8
    )
    assert np.abs(out.astype(int) - np.round(ref.permute(1, 2, 0).numpy() * 255)).max() <= 1
    f = derain_image(model, img.astype(np.float64) / 255, tile=16, overlap=8)
    assert f.dtype == np.float64 and 0 <= f.min() and f.max() <= 1
    t8 = derain_image(model, torch.from_numpy(img).permute(2, 0, 1), tile=16, overlap=8)
    assert t8.dtype == torch.uint8 and t8.shape == (3, 21, 30)


def test_values_outside_unit_range_are_refused_with_the_likely_cause() -> None:
    model = SDSEN(channels=2, stages=1)
    x = torch.rand(3, 8, 8)
    cases = [(x - 0.5, r"range \[-0.\d+, 0.\d+\]: negative values: a normalised image"),
             (x * 1.2, "8-bit levels stored as floats"),
             (x * 60000, "Divide by 65535"),
             (x * 1e6, "rescale it to"),
             (x + 1.5, "8-bit")]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            derain_image(model, bad, tile=16, overlap=8)
    # rounding of a conversion is not an error
    ok = (x.clamp(0.01, 0.99) + torch.tensor(5e-4)).clamp(max=1.0005)
    assert derain_image(model, ok, tile=16, overlap=8).shape == (3, 8, 8)


def test_a_thin_image_is_one_tile_of_the_same_area() -> None:
    from sdsen.models.inference import _tile_shape

    assert _tile_shape(20, 3000, 256) == (20, 3000)  # 256² / 20 = 3276 >= 3000: one tile
    assert _tile_shape(3000, 20, 256) == (3000, 20)
    assert _tile_shape(100, 5000, 256) == (100, 655)
    assert _tile_shape(1000, 1000, 256) == (256, 256)
    torch.manual_seed(0)
    model = SDSEN(channels=2, stages=2, blocks=1).eval()
    x = torch.rand(3, 12, 300)
    whole = x - model(x[None])[-1][0]
    tiled = derain_image(model, x, tile=64, overlap=8)  # 64² / 12 = 341 >= 300
    assert torch.allclose(tiled, whole.clamp(0, 1), atol=1e-6)  # one tile: the whole image


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((8, 8, 4), np.float32), "\\(H, W, 3\\)"),
        (np.zeros((8, 8, 3), np.int32), "uint8 or float"),
        (np.full((8, 8, 3), 200.0, np.float32), "Divide by 255"),
        (torch.zeros(8, 8, 3), "permute"),
        (torch.full((3, 8, 8), float("nan")), "NaN"),
    ],
)
def test_bad_images(bad, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        derain_image(SDSEN(channels=2, stages=1), bad, tile=16, overlap=8)
    with pytest.raises(ValueError, match="overlap"):
        derain_image(SDSEN(channels=2, stages=1), torch.rand(3, 8, 8), tile=16, overlap=16)


def test_an_earlier_stage_runs_only_its_stages_and_equals_the_full_run() -> None:
    torch.manual_seed(0)
    model = SDSEN(channels=2, stages=3, blocks=1).eval()
    image = np.random.default_rng(1).random((40, 30, 3)).astype(np.float32)
    calls: list[int | None] = []
    run = model.run_stages
    model.run_stages = lambda *a, **k: calls.append(k.get("stages")) or run(*a, **k)
    first = derain_image(model, image, tile=24, overlap=8, stage=0)
    assert set(calls) == {1}
    every = derain_image(model, image, tile=24, overlap=8, return_all=True)
    assert np.array_equal(first, every[0])
