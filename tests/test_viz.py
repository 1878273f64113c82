"""Smoke tests of the plotting helpers of notebooks 01-03 (``sdsen.viz.rain``, ``.equivariance``,
``.architecture``, ``.widgets``): each returns a figure with the expected number of axes, and
:func:`sdsen.viz.save_figure` writes the files."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sdsen.gconv import P4, P4M, P4ConvP4, P4ConvZ2, P4MConvZ2
from sdsen.models import DSEN, SDSEN
from sdsen.rain import synthesize
from sdsen.viz import architecture as varch
from sdsen.viz import equivariance as veq
from sdsen.viz import rain as vrain
from sdsen.viz import save_figure
from sdsen.viz import widgets as vwid
from sdsen.viz.images import as_hwc


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def clean() -> torch.Tensor:
    return torch.rand(3, 24, 20)  # non-square


# ------------------------------------------------------------------ rain


def test_as_hwc_accepts_tensor_and_array(clean):
    assert as_hwc(clean).shape == (24, 20, 3)
    assert as_hwc(np.zeros((5, 6, 3))).dtype == np.float32
    with pytest.raises(ValueError, match="H, W, 3"):
        as_hwc(np.zeros((5, 6)))


def test_show_images_one_axis_per_image(clean):
    assert len(vrain.show_images([clean] * 3).axes) == 3
    assert len(vrain.show_images([clean] * 3, ["a", "b", "c"], ncols=2).axes) == 3


def test_rain_decomposition_and_sweep(clean):
    s = synthesize(clean, angle=10, density=0.02, seed=1)
    assert len(vrain.rain_decomposition(s.rainy, s.clean, s.rain, title="t").axes) == 3
    assert len(vrain.angle_sweep(clean, [0, 30, 90], length=8, density=0.02).axes) == 6


def test_preset_gallery_and_histograms(clean):
    samples = {name: synthesize(clean, preset=name, seed=0) for name in ("light", "heavy")}
    assert len(vrain.preset_gallery(samples).axes) == 4
    r = samples["heavy"].rain
    assert len(vrain.rain_histograms({"ok": r, "swapped": -r}).axes) == 1


def test_jpeg_roundtrip_and_damage(clean):
    x = as_hwc(clean)
    y = vrain.jpeg_roundtrip(x, 90)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0 < np.abs(y - x).mean() < 0.2  # lossy, but close
    r = x - 0.5
    assert len(vrain.jpeg_damage(r, y - 0.5).axes) == 4  # 3 panels + colour bar
    assert len(vrain.jpeg_damage(r, y - 0.5, errors={50: 0.1, 90: 0.01}, quality=90).axes) == 5


# ------------------------------------------------------------------ equivariance


def test_element_labels_and_cayley_table_follow_the_group_law():
    assert [veq.element_label(g) for g in P4M.elements] == [
        "e",
        "r",
        "r²",
        "r³",
        "f",
        "fr",
        "fr²",
        "fr³",
    ]
    for group in (P4, P4M):
        t = veq.cayley_table(group)
        els = group.elements
        assert t.shape == (group.order, group.order)
        for i, a in enumerate(els):
            for j, b in enumerate(els):
                assert t[i, j] == group.index(group.compose(a, b)), (a, b)
            assert sorted(t[i]) == list(range(group.order)), a  # each row a permutation


def test_filter_bank_and_group_table_axes():
    torch.manual_seed(0)
    assert len(veq.filter_bank(P4ConvZ2(3, 2, 5)).axes) == 5
    assert len(veq.filter_bank(P4MConvZ2(3, 2, 5)).axes) == 9
    assert len(veq.filter_bank(P4ConvP4(2, 2, 3), in_plane=1).axes) == 5
    assert len(veq.group_table(P4M).axes) == 1


def test_group_maps_streaks_and_bars(clean):
    maps = torch.randn(4, 24, 20)
    moved = torch.randn(4, 20, 24)
    assert len(veq.group_maps(clean, maps, clean.transpose(-2, -1), moved).axes) == 10
    s = torch.rand(9, 9)
    fig = veq.streak_responses(
        s, s.T, torch.randn(4, 9, 9), torch.randn(4, 9, 9), torch.randn(9, 9), torch.randn(9, 9)
    )
    assert len(fig.axes) == 12
    assert len(veq.equivariance_bars({"a": 0.0, "b": 1e-6, "c": 0.3}).axes) == 1


# ------------------------------------------------------------------ architecture


def test_architecture_diagram_and_cost_bars():
    assert len(varch.architecture_diagram(stages=3, blocks=2).axes) == 1
    assert len(varch.architecture_diagram(stages=1, blocks=4, links=False).axes) == 1
    assert len(varch.cost_bars({"a": (10, 2e6), "b": (20, 3e3)}).axes) == 2


def test_trace_shapes_records_every_part_per_stage():
    x = torch.rand(1, 3, 11, 9)
    calls = varch.trace_shapes(SDSEN(channels=2, stages=2, blocks=2), x)
    names = [n for n, _ in calls]
    assert names.count("pre_layer") == 2 and names.count("re_layer.1") == 2
    assert names.count("connect_layers.0") == 1  # stage 0 skips the links (zero input)
    assert dict(calls)["pre_layer"] == (1, 2, 4, 11, 9)
    assert calls[-1] == ("dec.3", (1, 3, 11, 9))
    assert varch.trace_shapes(DSEN(channels=2, blocks=1), x)[0] == ("pre_layer", (1, 2, 4, 11, 9))


# ------------------------------------------------------------------ widgets


def test_panels_degrade_without_ipywidgets(monkeypatch, clean):
    monkeypatch.setattr(vwid, "widgets_available", lambda: False)
    assert vwid.slider_panel(lambda **kw: plt.figure(), {"a": (0, 1, 1, 0)}) is None
    assert vwid.rain_panel(clean, {"angle": (-90.0, 90.0, 5.0, 0.0)}) is None


def test_rain_panel_builds_sliders(clean):
    pytest.importorskip("ipywidgets")
    panel = vwid.rain_panel(clean, {"angle": (-90.0, 90.0, 5.0, 10.0), "layers": (1, 3, 1, 1)})
    sliders = panel.children[0].children
    assert [s.description for s in sliders] == ["angle", "layers"]
    assert type(sliders[1]).__name__ == "IntSlider" and sliders[0].value == 10.0
    image = panel.children[1]  # an Image, not an Output widget (nbclient#312 hangs on those)
    assert type(image).__name__ == "Image" and image.value[:4] == b"\x89PNG"
    before = image.value
    sliders[0].value = 45.0  # moving a slider redraws the figure
    assert image.value[:4] == b"\x89PNG" and image.value != before


# ------------------------------------------------------------------ saving


def test_save_figure_writes_into_folder(tmp_path, clean):
    fig = vrain.show_images([clean])
    paths = save_figure(fig, "01_test", formats=("png", "svg"), folder=tmp_path / "figs")
    assert [p.name for p in paths] == ["01_test.png", "01_test.svg"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
