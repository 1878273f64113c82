"""Smoke tests of the result / training figures of ``sdsen.viz`` (notebooks 04-06)."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sdsen.analysis import (
    load_benchmark_results,
    paired_gap,
    refinement_table,
    score_table,
    stage_change,
    stage_gains,
    stage_means,
    sweep_curve,
    sweep_summary,
    sweep_table,
)
from sdsen.viz import save_figure
from sdsen.viz.compare import before_after_widget, png_bytes, stage_widget, wipe
from sdsen.viz.results import (
    plot_angle_sweep,
    plot_before_after,
    plot_stage_change,
    plot_stage_curves,
    plot_stage_grid,
)
from sdsen.viz.training import (
    model_cards_table,
    plot_training_curves,
    plot_validation_curve,
    training_curves,
)


def _rows(stages: int, images: int = 3, base: float = 20.0, seed: int = 0) -> list[dict]:
    """Fake evaluate() rows: PSNR rising with the stage, plus per-image noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(images):
        for t, stage in enumerate(["input", *(str(s) for s in range(1, stages + 1))]):
            p = base + 2.0 * t - 0.5 * max(t - 3, 0) ** 2 + float(rng.normal(0, 0.1))
            rows.append({"image": f"im{i}", "stage": stage, "psnr_rgb": p - 1.0,
                         "ssim_rgb": 0.5 + 0.03 * t, "psnr_y": p, "ssim_y": 0.6 + 0.03 * t})
    return rows


def _save(fig, tmp_path, name: str) -> None:
    paths = save_figure(fig, name, folder=tmp_path)
    plt.close(fig)
    assert paths == [tmp_path / f"{name}.png"]
    assert paths[0].stat().st_size > 1000


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ------------------------------------------------------------------------------ training
def _metrics_rows(steps: int = 40, stages: int = 3) -> list[dict]:
    rows = []
    for s in range(5, steps + 1, 5):
        parts = [0.1 / s * (t + 1) for t in range(stages)]
        rows.append({"event": "train", "step": s, "loss": sum(parts), "loss_stages": parts,
                     "lr": 1e-3 if s < 30 else 1e-4, "grad_norm_max": 2.0 + (s == 15) * 1e3})
        if s % 20 == 0:
            rows.append({"event": "val", "step": s, "psnr": [20.0 + s / 10] * stages,
                         "ssim": [0.7] * stages, "psnr_y": [21.0 + s / 10] * stages,
                         "ssim_y": [0.8] * stages, "images": 2})
    return rows


def test_training_curves_from_run_dir(tmp_path):
    rows = _metrics_rows()
    # a resumed run re-logs step 40: the last row of a step wins
    rows.append({**rows[-2], "loss": 123.0})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    c = training_curves(tmp_path)
    assert c["step"].tolist() == list(range(5, 41, 5))
    assert c["loss_stages"].shape == (8, 3)
    assert c["psnr_y"].shape == (2, 3) and c["val_step"].tolist() == [20, 40]
    assert c["loss"][-1] == 123.0
    assert c["grad_norm_max"][2] == 1002.0 and c["grad_norm_max"][0] == 2.0
    old_log = training_curves([{k: v for k, v in r.items() if k != "grad_norm_max"}
                               for r in rows])  # logs written before the norm was recorded
    assert np.isnan(old_log["grad_norm_max"]).all()
    _save(plot_training_curves(tmp_path, marks=[20]), tmp_path, "04_test_curves")


def test_training_curves_empty_run(tmp_path):
    c = training_curves(tmp_path)  # no metrics.jsonl yet
    assert c["step"].size == 0 and c["psnr"].shape == (0, 0)
    _save(plot_training_curves([]), tmp_path, "04_test_empty")


def test_validation_curve_colours_points_by_stages_scored(tmp_path):
    rows = [{"event": "val", "step": s, "psnr": [20.0] * n, "ssim": [0.7] * n,
             "psnr_y": [21.0 + s / 100] * n, "ssim_y": [0.7 + s / 1e4] * n}
            for s, n in ((100, 1), (200, 1), (300, 4), (400, 4))]
    fig = plot_validation_curve(rows, baseline={"rainy input": 21.0, "rainy input SSIM": 0.7},
                                targets={"target": 28.0})
    psnr_ax, ssim_ax = fig.axes[:2]
    points = psnr_ax.collections[0]
    assert points.get_offsets()[:, 1].tolist() == [22.0, 23.0, 24.0, 25.0]
    assert points.get_array().tolist() == [1, 1, 4, 4]
    assert [line.get_ydata()[0] for line in psnr_ax.lines[1:]] == [21.0, 28.0]
    assert [line.get_ydata()[0] for line in ssim_ax.lines[1:]] == [0.7]
    assert fig.axes[2].get_yticks().tolist() == [1.0, 4.0]  # the colour bar: stage counts only
    _save(fig, tmp_path, "campaign_test_curve")


def test_model_cards_table():
    card = {"role": "default", "steps": 100, "stopped_early": True, "hardware": "GPU",
            "metrics": {"Rain800": {"psnr_y": 30.0, "ssim_y": 0.9}}}
    other = {"role": "fast", "steps": 5, "hardware": "CPU",
             "metrics": {"RainCityscapes": {"psnr_y": 22.0, "ssim_y": 0.8}}}
    text = model_cards_table({"sdsen": card, "dsen": None, "fast": other})
    assert text.splitlines()[0].endswith("| Rain800: Y PSNR / SSIM | RainCityscapes: Y PSNR / SSIM |")
    assert "| `sdsen` | default | 100 (stopped early) | GPU | 30.00 / 0.900 | – |" in text
    assert "| `fast` | fast | 5 | CPU | – | 22.00 / 0.800 |" in text
    assert "| `dsen` | no model card yet | – | – | – | – |" in text
    tuned = {"role": "fine-tuned", "steps": 2000, "init": [{"steps": 600}], "hardware": "CPU"}
    assert "| `sdsen` | fine-tuned | 600 + 2000 | CPU |" in model_cards_table({"sdsen": tuned})


# ------------------------------------------------------------------------------ stages
def test_stage_grid_non_square(tmp_path):
    clean = torch.rand(3, 20, 28) * 0.5
    rainy = (clean + 0.3 * (torch.rand(3, 20, 28) > 0.9)).clamp(0, 1)
    rains = [(rainy - clean)[None] * f for f in (0.5, 0.8, 1.0)]
    fig = plot_stage_grid(rainy, clean, rains, title="test")
    assert len(fig.axes) == 2 * (3 + 2)
    assert "inf" not in fig.axes[0].get_title()
    _save(fig, tmp_path, "05_test_grid")


def test_stage_change_finds_where_a_later_stage_over_removes(tmp_path):
    clean = torch.full((3, 8, 10), 0.5)
    rainy = clean.clone()
    rainy[:, :, :5] += 0.2  # rain on the left half only
    r1 = rainy - clean  # stage 1: exact
    r2 = r1.clone()
    r2[:, :2, 5:] = 0.1  # stage 2 also removes a veil from the dry top-right corner
    c = stage_change(rainy, clean, [r1, r2])
    assert c["change"].shape == (8, 10) and (c["first"], c["last"]) == (1, 2)
    assert c["worse"] == pytest.approx(10 / 80) and c["better"] == 0.0
    assert c["rain_where_worse"] == pytest.approx(0.1) and c["true_where_worse"] == 0.0
    assert c["excess"][0, 9] == pytest.approx(0.1) and c["excess"][5, 0] == pytest.approx(0.0)
    same = stage_change(rainy, clean, [r1, r1])
    assert same["worse"] == 0.0 and math.isnan(same["rain_where_worse"])
    fig = plot_stage_change(rainy, clean, [r1, r2], title="test")
    assert "worse on 12% of pixels" in fig.axes[1].get_title()
    _save(fig, tmp_path, "05_test_change")


def test_stage_gains_and_tables():
    rows = _rows(stages=8)
    stages, means = stage_means(rows)
    assert stages[0] == "input" and len(means) == 9
    g = stage_gains(rows)
    assert g["best"] == "5"  # the fake curve peaks at stage 5
    assert math.isclose(sum(g["gains"]), g["last_value"] - g["input_value"], abs_tol=1e-9)
    assert sum(g["best_per_image"].values()) == 3
    table = refinement_table({"sdsen": rows, "dsen": _rows(stages=1)})
    assert table.splitlines()[-1] == "| best stage | 5 | 1 |"
    assert "**" in table


def test_stage_curves(tmp_path):
    fig = plot_stage_curves({"sdsen": _rows(8), "dsen": _rows(1)}, metrics=("psnr_y", "ssim_rgb"))
    assert len(fig.axes) == 2
    _save(fig, tmp_path, "05_test_stage_curves")


def test_score_table_and_gap():
    a, b = _rows(2, base=20.0), _rows(2, base=19.0, seed=1)
    text = score_table({"a": a, "b": b})
    lines = text.splitlines()
    assert lines[2].startswith("| rainy input (identity)") and len(lines) == 5
    g = paired_gap(a, b)
    assert g["n"] == 3 and g["wins"] == 3 and 0.5 < g["mean"] < 1.5
    with pytest.raises(ValueError):
        paired_gap(a, _rows(2, images=2))


def test_score_table_with_eval_result():
    from sdsen.evaluate import evaluate

    class Half(torch.nn.Module):
        def forward(self, x):
            return [0.5 * x, 0.9 * x]

    clean = torch.rand(3, 12, 17)
    res = evaluate(Half(), [(clean, clean)], progress=False)
    assert "| `half` | 2 |" in score_table({"half": res})
    assert stage_gains(res)["best"] == "1"


# ------------------------------------------------------------------------------ sweep
def test_sweep_from_benchmark_json(tmp_path):
    angles = [-90, -45, 0, 45, 90]
    for name in ("plain-vertical", "sdsen-vertical"):
        data = {"name": name, "synthetic": _rows(8), "real": None,
                "sweep": {str(a): _rows(8, images=2, base=20 - abs(a) / 30) for a in angles}}
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "zoo.json").write_text("{}")
    res = load_benchmark_results(tmp_path)
    assert sorted(res) == ["plain-vertical", "sdsen-vertical"]
    sweeps = {n: r["sweep"] for n, r in res.items()}
    c = sweep_curve(sweeps["sdsen-vertical"])
    assert c["angle"].tolist() == angles and np.isfinite(c["input"]).all()
    assert c["mean"][2] > c["mean"][0]
    assert len(sweep_table(sweeps).splitlines()) == 2 + 1 + 2
    summary = sweep_summary(sweeps, "plain-vertical").splitlines()
    assert len(summary) == 2 + 2 and summary[2].startswith("| `plain-vertical` |")
    assert summary[2].endswith("| +0.00 | +0.00 |")  # the baseline against itself
    with pytest.raises(ValueError, match="baseline 'plain' is not among"):
        sweep_summary(sweeps, "plain")
    with pytest.raises(ValueError, match=r"lack one of the angles 0, -90, 90"):
        sweep_summary({n: {a: r for a, r in s.items() if a != "90"} for n, s in sweeps.items()},
                      "plain-vertical")
    _save(plot_angle_sweep(sweeps), tmp_path, "06_test_sweep")
    assert load_benchmark_results(tmp_path / "missing") == {}


# ------------------------------------------------------------------------------ before/after
def test_before_after_figure_and_wipe(tmp_path):
    before = torch.rand(3, 24, 40)
    after = before.numpy().transpose(1, 2, 0) * 0.5  # (H, W, 3) array works too
    _save(plot_before_after(before, after, reference=before), tmp_path, "06_test_before_after")
    w = wipe(np.zeros((4, 10, 3)), np.ones((4, 10, 3)), 0.3)
    assert w[:, :2].min() == 1.0 and w[:, 3:].max() == 0.0 and w[0, 2, 0] == 1.0
    assert png_bytes(np.zeros((3, 5, 3)), scale=2).startswith(b"\x89PNG")


def test_widgets_build():
    pytest.importorskip("ipywidgets")
    clean = torch.rand(3, 16, 24)
    rainy = (clean + 0.2).clamp(0, 1)
    box = stage_widget(rainy, clean, [(rainy - clean)[None]] * 3)
    slider = box.children[0]
    slider.value = 1  # the callback swaps the frame
    assert "after stage 1" in box.children[1].value
    ab = before_after_widget(rainy, clean)
    ab.children[0].value = 0.9
    assert bytes(ab.children[1].value).startswith(b"\x89PNG")


def test_gain_plots_put_a_harmful_model_below_zero(tmp_path):
    def rows(inp, out):  # two images
        return [{"image": k, "stage": s, "psnr_y": v} for k in "ab"
                for s, v in (("input", inp), ("1", out))]

    sweep = {"0": rows(25.0, 28.0), "90": rows(25.0, 24.0)}
    c = sweep_curve(sweep)
    assert c["gain"].tolist() == [3.0, -1.0] and c["gain_sd"].tolist() == [0.0, 0.0]
    fig = plot_angle_sweep({"m": sweep}, gain=True)
    line = fig.axes[0].lines[0]  # the error-bar line
    assert list(line.get_ydata()) == [3.0, -1.0]
    assert "gain in PSNR Y over the rainy input" in fig.axes[0].get_ylabel()
    fig = plot_stage_curves({"m": rows(25.0, 24.5)}, metrics=("psnr_y",), gain=True)
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.0, -0.5]
    _save(fig, tmp_path, "gain_test")
