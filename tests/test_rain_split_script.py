"""benchmarks/rain_split.py: the smooth / detail split of a rain estimate and what each scores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def split(load_script):
    return load_script("benchmarks/rain_split.py")


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 40, 48, generator=g) * 0.6
    streaks = (torch.rand(3, 40, 48, generator=g) > 0.9).float() * 0.3
    return (clean + 0.1 + streaks).clamp(0, 1), clean  # a uniform veil of 0.1 and streaks


def test_smooth_keeps_constants_and_means(split) -> None:
    x = torch.full((3, 20, 30), 0.25)
    assert torch.allclose(split.smooth(x, 7), x)  # no darkening at the borders
    y = torch.rand(3, 20, 30)
    assert split.smooth(y, 1).equal(y)


def test_split_of_no_estimate_and_of_a_uniform_layer(split) -> None:
    rainy, clean = _pair()
    none = split.split_scores(rainy, clean, torch.zeros_like(rainy), 7)
    assert none["model"] == none["smooth only"] == none["detail only"] == none["input"]
    assert none["true smooth + model detail"] == none["true smooth"]
    assert none["|S(R̂)|"] == none["|D(R̂)|"] == 0.0
    assert none["true smooth"] > none["input"]  # removing the veil alone helps
    veil = split.split_scores(rainy, clean, torch.full_like(rainy, 0.1), 7)
    assert veil["|D(R̂)|"] < 1e-6 and veil["model"] == pytest.approx(veil["smooth only"])
    assert veil["model"] > none["model"]
    perfect = split.split_scores(rainy, clean, rainy - clean, 7)
    assert perfect["|S(R̂)|"] == perfect["|S(R)|"] and perfect["|D(R̂)|"] == perfect["|D(R)|"]
    assert perfect["true smooth + model detail"] == perfect["model"]


def test_table_has_one_row_per_model(split) -> None:
    rainy, clean = _pair()
    rows = [split.split_scores(rainy, clean, torch.zeros_like(rainy), 7)]
    text = split.table({"a": rows, "b": rows})
    assert text.count("| `a` |") == 1 and text.count("| `b` |") == 1
    assert text.startswith(f"Rainy input {rows[0]['input']:.2f} dB")


def test_colour_of_the_removed_layer_per_channel(split) -> None:
    rainy, clean = _pair()
    tint = torch.tensor([0.0, 0.02, 0.08]).view(3, 1, 1).expand_as(rainy)  # blue-heavy layer
    m = split.split_scores(rainy, clean, tint, 7)
    assert (m["mean R̂ R"], m["mean R̂ G"]) == (0.0, pytest.approx(0.02))
    assert m["mean R̂ B"] == pytest.approx(0.08)
    for c, channel in enumerate("RGB"):
        assert m[f"mean R {channel}"] == pytest.approx((rainy - clean)[c].mean().item())
    assert split.colour_text(m, "R̂") == "(0.0, 5.1, 20.4)"
    assert "| (0.0, 5.1, 20.4) |" in split.table({"a": [m]})
