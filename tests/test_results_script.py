"""benchmarks/results.py: tables, validation curves and model cards from recorded numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sdsen.models import ModelConfig, build_model
from sdsen.pretrained import save_weights
from sdsen.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(load_script):
    return load_script("benchmarks/results.py")


def _rows(values: dict[str, list[float]]) -> list[dict]:
    """Per-image rows of sdsen.evaluate: one per (image, stage)."""
    return [{"image": i, "stage": stage, "psnr_y": v, "ssim_y": 0.5, "psnr_rgb": v,
             "ssim_rgb": 0.5} for stage, vals in values.items() for i, v in enumerate(vals)]


def test_paired_row_is_the_mean_per_image_gap_in_both_metrics(results) -> None:
    res = {"sdsen-p4m": {"real": _rows({"input": [20, 20, 20], "8": [22, 21, 23]})},
           "plain": {"real": _rows({"input": [20, 20, 20], "8": [21, 21.5, 22]})}}
    for r in res["sdsen-p4m"]["real"]:
        r["ssim_y"] = 0.6 if r["stage"] == "8" else 0.5  # above plain's 0.5 on every image
    row = results.table_paired(res, "real", "sdsen-p4m", "plain")
    # gaps 1, -0.5, 1 -> mean +0.50, better on 2 of 3; SSIM +0.100 on 3 of 3; no zoo: no recipes
    assert row.startswith("| real: `sdsen-p4m` − `plain` | +0.50 dB | 0.87 |")
    assert row.endswith("| 2/3 | +0.100 | 3/3 | – |")
    tc = {"steps": 600, "batch_size": 4, "patch_size": 40, "lr": 1e-3, "grad_clip": 1.0}
    zoo = {"hardware": "CPU", "models": {"sdsen-p4m": {"train_config": {**tc, "lr": 5e-4}},
                                         "plain": {"train_config": tc}}}
    assert results.table_paired(res, "real", "sdsen-p4m", "plain", zoo).endswith(
        "| lr 0.0005 vs 0.001 |")
    assert results.table_paired(res, "synthetic", "sdsen-p4m", "plain") == ""  # not scored
    assert results.recipe_difference(zoo, "plain", "plain") == ""
    assert results.recipe_difference(zoo, "sdsen", "missing") == ""

def test_curve_table_and_figure(results, tmp_path: Path, monkeypatch) -> None:
    points = [{"step": s, "psnr_y": [v - 0.3, v], "ssim_y": [0.7, 0.72]}
              for s, v in ((600, 21.0), (1000, 21.4), (1600, 21.8), (2600, 22.0))]
    curve = {"images": 8, "points": points, "init_weights": "w.pt", "init_steps": 600,
             "identity": {"psnr_y": 20.5, "ssim_y": 0.7},
             "train_config": {"batch_size": 4, "patch_size": 40}}
    row = results.curve_table({"sdsen": curve}).splitlines()[-1]
    # second half: steps >= 1600, slope (22.0 - 21.8) / 1000 steps = +0.20 dB per 1,000 steps;
    # 20,000 x 50 x 64² / (2,600 x 4 x 40²) = 246
    assert row == ("| `sdsen` | 8 | 600 → 2,600 | 21.00 → 22.00 (22.00) | 20.50 | "
                   "0.720 → 0.720 (0.700) | +0.20 | 246 |")
    assert results.curve_table({}) == ""
    monkeypatch.setenv("SDSEN_FIGURES_DIR", str(tmp_path))
    assert results.curve_figure({"sdsen": curve}) == ["results_training_curve.png"]
    assert (tmp_path / "results_training_curve.png").stat().st_size > 10_000

def test_cards_of_a_fine_tuned_model(results, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(channels=2, stages=2, blocks=1)
    save_weights(build_model(cfg), tmp_path / "sdsen.pt")
    first = {"steps": 600, "train_seconds": 2400.0, "preset": "mixed", "angle_range": [-30, 30],
             "command": "python first.py",
             "train_config": {"batch_size": 4, "patch_size": 40, "lr": 1e-3,
                              "milestones": [450, 525]}}
    entry = {"role": "default", "model_config": {}, "preset": "mixed", "angle_range": [-30, 30],
             "steps": 2000, "train_seconds": 4800.0, "command": "python second.py", "init": first,
             "train_config": {"batch_size": 4, "patch_size": 40, "lr": 5e-4, "gamma": 0.1,
                              "milestones": [1500, 1750]}}
    zoo = {"hardware": "CPU", "torch": "2.13", "date": "2026-11-26", "models": {"sdsen": entry}}
    res = {"sdsen": {"real": _rows({"input": [20.0, 21.0], "8": [21.0, 22.5]})}}
    results.write_cards(res, zoo, weights_dir=tmp_path)
    card = json.loads((tmp_path / "cards.json").read_text())["sdsen"]
    assert [i["steps"] for i in card["init"]] == [600]
    assert card["metrics"]["real-background validation (RainCityscapes)"]["psnr_y"] == \
        pytest.approx(21.75)
    text = (tmp_path / "README.md").read_text()
    assert "80 min of training (40 min before it)" in text
    assert "started from the weights of training 1 of 1: 600 steps, batch 4 of 40²" in text
    assert card["study"] is False  # the zoo entry says nothing: a model for users
    assert "`python first.py`" in text and "- command: `python second.py`" in text


def test_stage_table_one_row_per_model(results) -> None:
    res = {"a": {"real": _rows({"input": [20.0, 20.0], "1": [22.0, 22.0], "2": [21.0, 21.2]})},
           "b": {"real": _rows({"input": [20.0], "1": [21.0]})}}
    lines = results.table_stages(res, "real", ["a", "b", "missing"]).splitlines()
    assert lines[0] == "| model | input | 1 | 2 |"
    assert lines[2:] == ["| `a` | 20.00 | 22.00 | 21.10 |", "| `b` | 20.00 | 21.00 |  |"]

def test_sweep_table_by_angle_and_the_drop_to_the_worse_end(results) -> None:
    angles = results.ANGLES

    def sweep(f):
        return {str(a): _rows({"input": [25.0, 25.0], "8": [f(a), f(a)]}) for a in angles}

    # plain: 27 at 0° falling by 0.02 dB per degree; equivariant: flat 26.5
    res = {"plain": {"sweep": sweep(lambda a: 27.0 - 0.02 * abs(a))},
           "equi": {"sweep": sweep(lambda a: 26.5)}}
    lines = results.sweep_table(res, ["plain", "equi"]).splitlines()
    assert lines[0].startswith("| model | -90° | -75° |") and len(lines) == 5
    assert lines[2] == "| rainy input | " + " | ".join(["25.00"] * 13) + " | – |"
    assert lines[3].startswith("| `plain` | 25.20 | 25.50 |") and lines[3].endswith("| -1.80 |")
    assert lines[4].endswith("| 26.50 | +0.00 |")

def test_cards_say_where_each_model_was_trained(results, tmp_path: Path) -> None:
    save_weights(build_model(ModelConfig(channels=2, stages=1, blocks=1)), tmp_path / "a.pt")
    save_weights(build_model(ModelConfig(channels=2, stages=1, blocks=1)), tmp_path / "b.pt")
    entry = {"role": "r", "model_config": {}, "preset": "mixed", "angle_range": None,
             "steps": 2, "train_seconds": 60.0, "command": "c", "train_config": {}}
    zoo = {"hardware": "CPU", "torch": "2.13", "date": "2026-11-25",
           "models": {"a": entry, "b": {**entry, "hardware": "NVIDIA H200", "torch": "2.11",
                                        "date": "2026-11-26"}}}
    results.write_cards({}, zoo, weights_dir=tmp_path)
    cards = json.loads((tmp_path / "cards.json").read_text())
    assert (cards["a"]["hardware"], cards["a"]["torch"]) == ("CPU", "2.13")  # the zoo's
    assert (cards["b"]["hardware"], cards["b"]["date"]) == ("NVIDIA H200", "2026-11-26")


def test_rain_split_table_is_computed(results, tmp_path: Path) -> None:
    assert results.rain_split_table(tmp_path) == ""  # nothing recorded: no table

    def row(model: float, smooth_only: float, with_true_smooth: float) -> dict:
        return {"input": 20.0, "true smooth": 26.0, "model": model, "smooth only": smooth_only,
                "detail only": 20.0, "true smooth + model detail": with_true_smooth,
                "|S(R̂)|": 0.05, "|S(R)|": 0.07, "|D(R̂)|": 0.01, "|D(R)|": 0.04}

    split = {"command": "python benchmarks/rain_split.py ...", "indices": [0, 1], "kernel": 31,
             "per_image": {"a": [row(21.0, 21.0, 26.5)] * 2, "b": [row(19.0, 20.0, 23.0)] * 2}}
    (tmp_path / "analyses").mkdir()
    (tmp_path / "analyses" / "rain_split.json").write_text(json.dumps(split))
    lines = results.rain_split_table(tmp_path).splitlines()
    assert "2 pairs, smooth part = 31² mean" in lines[0]
    assert "| none (rainy input) | 20.00 | – | – | – | – |" in lines
    assert "| the true rain | – | 26.00 | – | – | – |" in lines
    assert "| `a` | 21.00 | 21.00 | 26.50 | – | – |" in lines
    assert "| `b` | 19.00 | 20.00 | 23.00 | – | – |" in lines

    # with the colour columns: a blue-heavy model layer against a grey true rain
    colour = {"mean R R": 0.04, "mean R G": 0.04, "mean R B": 0.04,
              "mean R̂ R": 0.02, "mean R̂ G": 0.04, "mean R̂ B": 0.08}
    split["per_image"] = {"a": [row(21.0, 21.0, 26.5) | colour] * 2}
    (tmp_path / "analyses" / "rain_split.json").write_text(json.dumps(split))
    lines = results.rain_split_table(tmp_path).splitlines()
    assert "| the true rain | – | 26.00 | – | (10.2, 10.2, 10.2) | +0.0 |" in lines
    assert "| `a` | 21.00 | 21.00 | 26.50 | (5.1, 10.2, 20.4) | +15.3 |" in lines

def test_cards_name_the_preset_and_what_the_recipe_changed(results, tmp_path: Path) -> None:
    save_weights(build_model(ModelConfig(channels=2, stages=1, blocks=1)), tmp_path / "a.pt")
    save_weights(build_model(ModelConfig(channels=2, stages=1, blocks=1)), tmp_path / "b.pt")
    official = TrainConfig.preset("official").to_dict()
    small = TrainConfig.preset("official", batch_size=4, patch_size=40, steps=600).to_dict()
    entry = {"role": "r", "model_config": {}, "preset": "mixed", "angle_range": None,
             "steps": 600, "train_seconds": 60.0, "command": "c", "train_config": small}
    clipped_later = {**official, "grad_clip": 1.0}  # the run's last config ...
    zoo = {"hardware": "CPU", "torch": "2.13", "date": "2026-11-26",
           "models": {"a": entry, "b": {**entry, "train_config": clipped_later,
                                        "config_changes": [[6664, {"grad_clip": [None, 1.0]}]]}}}
    results.write_cards({}, zoo, weights_dir=tmp_path)
    cards = json.loads((tmp_path / "cards.json").read_text())
    assert cards["a"]["training_preset"] == (
        "the `official` preset with batch_size 50 -> 4, patch_size 64 -> 40, steps 20000 -> 600, "
        "milestones [15000, 17500] -> [450, 525]")
    assert cards["b"]["training_preset"] == "the `official` preset, unchanged"  # ... as started
    assert "changed when resumed at step 6664: grad_clip None -> 1.0" in (
        tmp_path / "README.md").read_text()
    assert "600 steps; the `official` preset with batch_size 50 -> 4" in (
        tmp_path / "README.md").read_text()
    assert results.preset_text({"name": "custom"}) is None
