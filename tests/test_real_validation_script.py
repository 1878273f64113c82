"""benchmarks/real_validation.py: scoring a paired folder and recording the tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdsen.data.io import write_image
from sdsen.models import ModelConfig, build_model
from sdsen.pretrained import save_weights


@pytest.fixture(scope="module")
def validation(load_script):
    return load_script("benchmarks/real_validation.py")


def test_record_says_how_many_pairs_were_scored(validation, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        clean = rng.random((12, 14, 3), dtype=np.float32) * 0.8
        write_image(tmp_path / "pairs" / "rain" / f"{name}.png", clean + 0.1)
        write_image(tmp_path / "pairs" / "gt" / f"{name}.png", clean)
    save_weights(build_model(ModelConfig(channels=2, stages=2, blocks=1)), tmp_path / "w.pt")
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    args = ["--root", str(tmp_path / "pairs"), "--weights", str(tmp_path / "w.pt"),
            "--device", "cpu", "--record", str(notes)]
    assert validation.main([*args, "--max-images", "2"]) == 0
    text = notes.read_text()
    assert text.startswith("# my notes\n") and "(2 of its 3 pairs)" in text
    assert "(2 images)" in text and "| rainy input (identity) |" in text
    assert validation.main(args) == 0  # the block is replaced, not appended
    text = notes.read_text()
    assert text.count("<!-- real-validation:start -->") == 1 and "(3 of its 3 pairs)" in text
    capsys.readouterr()
    assert validation.main(["--root", str(tmp_path / "none")]) == 0
    assert "not found: nothing to score" in capsys.readouterr().out


def test_a_held_out_list_is_scored_alone_in_its_own_block(validation, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name in ("a", "b", "c", "d"):
        clean = rng.random((12, 14, 3), dtype=np.float32) * 0.8
        write_image(tmp_path / "pairs" / "rain" / f"{name}.png", clean + 0.1)
        write_image(tmp_path / "pairs" / "gt" / f"{name}.png", clean)
    (tmp_path / "pairs" / "val.txt").write_text("b\nd\n")
    save_weights(build_model(ModelConfig(channels=2, stages=1, blocks=1)), tmp_path / "w.pt")
    notes = tmp_path / "notes.md"
    args = ["--root", str(tmp_path / "pairs"), "--weights", str(tmp_path / "w.pt"),
            "--device", "cpu", "--record", str(notes)]
    assert validation.main([*args, "--marker", "held"]) == 0  # val.txt: b and d only
    assert validation.main([*args, "--val-list", "none"]) == 0  # every pair, the default block
    text = notes.read_text()
    assert "`val.txt of pairs` (2 of its 2 pairs)" in text and "(2 images)" in text
    assert text.count("<!-- real-validation-held:start -->") == 1
    assert "`pairs` (4 of its 4 pairs)" in text and "(4 images)" in text
