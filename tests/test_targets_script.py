"""benchmarks/targets.py: the default model's targets, from scores to the table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdsen.models import ModelConfig, build_model


@pytest.fixture(scope="module")
def targets(load_script):
    return load_script("benchmarks/targets.py")


def _rows(by_stage: dict[str, list[float]], image_names=("a", "b")) -> list[dict]:
    return [{"image": n, "stage": s, "psnr_y": v, "ssim_y": v / 40, "psnr_rgb": v - 1,
             "ssim_rgb": v / 41} for s, vals in by_stage.items() for n, v in zip(image_names, vals)]


def test_target_values_and_the_table(targets) -> None:
    parts = {
        "rain800": {"rows": _rows({"input": [23, 23], "1": [27, 28], "2": [28, 29]}),
                    "colour": {"removed": [10.0, 12.0, 13.0], "true": [10.5, 12.0, 12.0]}},
        "cityscapes": {"rows": _rows({"input": [20, 21], "1": [22, 20.5]})},
        "clean": {"builtin": _rows({"input": [99, 99], "1": [40, 39]}),
                  "rain800_clean_halves": _rows({"input": [99, 99], "1": [37, 38]})},
        "light": {"rows": _rows({"input": [30, 30], "1": [31, 30]})},
        "rot90": {"rows": _rows({"input": [23, 23], "1": [25, 26]})},
        "sweep": {"0": _rows({"input": [25, 25], "1": [29, 29]}),
                  "90": _rows({"input": [25, 25], "1": [27, 28]})},
    }
    v = targets.target_values(parts)
    assert v["rain800_psnr_y"] == 28.5 and v["rain800_last_vs_best"] == 0.0
    assert v["rain800_colour"] == pytest.approx(1.5)  # (-0.5, 0, +1): largest minus smallest
    assert v["cityscapes_above_input"] == 1 and v["cityscapes_psnr_y"] == 21.25
    assert v["clean_psnr_min"] == 37.5 and v["light_gain_y"] == 0.5
    assert v["rot90_gain_y"] == 2.5 and v["sweep_min_gain_y"] == 2.5
    assert targets.meets("rain800_psnr_y", 28.5) and not targets.meets("rot90_gain_y", 2.5)
    assert targets.meets("rain800_colour", 1.5) and not targets.meets("rain800_colour", 2.5)
    table = targets.targets_table({"m": {"parts": parts}})
    assert "| Rain800 val, Y PSNR of the last stage (dB) | >= 28 | 23.00 | 28.50 yes |" in table
    assert "| `light` preset, Y gain over the rainy input (dB) | > 0 |  | +0.50 yes |" in table
    assert "+2.50 **no**" in table
    partial = targets.targets_table({"m": {"parts": {"light": parts["light"]}}})
    assert "| RainCityscapes, Y PSNR (dB) | >= 22.5 |  | not measured |" in partial
    assert targets.sweep_table({"m": {"parts": parts}}).splitlines()[-1] == "| `m` | +4.00 | +2.50 |"


def test_parts_score_a_model_on_the_data(targets, data_root: Path) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(channels=2, stages=2, blocks=1)).eval()
    r800 = targets.part_rain800(model, data_root, quick=False)
    assert {r["image"] for r in r800["rows"]} == {"2", "3"}  # the val.txt pairs only
    assert {r["stage"] for r in r800["rows"]} == {"input", "1", "2"}
    assert r800["colour"]["true"][0] > 0  # the synthetic streaks add light
    rot = targets.part_rot90(model, data_root, quick=False)
    assert {r["stage"] for r in rot["rows"]} == {"input", "2"}
    sweep = targets.part_sweep(model, data_root, quick=True)
    assert set(sweep) == {"-90", "0", "45"} and len(sweep["0"]) == 2 * 2
    assert len(targets.part_cityscapes(model, data_root, quick=True)["rows"]) == 2 * 3
    assert targets.with_stages(model, 1).config.stages == 1


def test_write_block_replaces_only_the_marked_part(targets, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- targets:start -->\nold\n<!-- targets:end -->\nend\n")
    targets.write_block(readme, "| new |\n")
    text = readme.read_text()
    assert text.startswith("intro\n<!-- targets:start -->\n<!-- generated") and "old" not in text
    assert "| new |\n<!-- targets:end -->\nend\n" in text
    (tmp_path / "other.md").write_text("no markers")
    with pytest.raises(SystemExit, match="no <!-- targets:start -->"):
        targets.write_block(tmp_path / "other.md", "x")


def test_records_merge_only_parts_of_the_same_model(targets) -> None:
    old = {"source": "checkpoint a.pt (step 5)", "command": "first", "parts": {"rain800": 1}}
    same = targets.merge_record(old, {"source": old["source"], "command": "second",
                                      "parts": {"light": 2}})
    assert same["parts"] == {"rain800": 1, "light": 2}
    assert same["command"] == "first && second"
    other = targets.merge_record(old, {"source": "weights sdsen", "command": "third",
                                       "parts": {"light": 3}})
    assert other["parts"] == {"light": 3} and other["command"] == "third"
