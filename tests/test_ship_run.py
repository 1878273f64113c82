"""scripts/ship_run.py: an sdsen train run folder becomes shipped weights and a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sdsen.data import SyntheticRainDataset
from sdsen.models import ModelConfig, build_model
from sdsen.pretrained import load_weights
from sdsen.train import TrainConfig, fit, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ModelConfig(channels=2, stages=2, blocks=1)


@pytest.fixture(scope="module")
def ship(load_script):
    return load_script("scripts/ship_run.py")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A 3-step run made in chunks of one step, clipping switched on at the second resume."""
    run = tmp_path_factory.mktemp("run")
    data = SyntheticRainDataset("train", patch_size=16, length=8, preset="light", seed=0)
    cfg = TrainConfig.preset("quick", steps=3, batch_size=2, patch_size=16, log_every=1,
                             val_every=0, ckpt_every=0, log_images_every=0, tensorboard=False,
                             device="cpu", grad_clip=None)
    for k in range(3):
        chunk = cfg.replace(grad_clip=1.0) if k == 2 else cfg
        torch.manual_seed(0)
        fit(build_model(TINY), data, None, chunk, run, progress=False, max_seconds=0)
        if k == 1:
            shutil.copyfile(run / "latest.pt", run / "at_step_2.pt")
    (run / "data.json").write_text(json.dumps({"data": "synthetic", "rain_preset": "light"}))
    return run


def _args(run: Path, tmp_path: Path, *more: str) -> list[str]:
    return [str(run), "--name", "tiny-run", "--role", "a test", "--hardware", "test CPU",
            "--command", "sdsen train ...", "--date", "2026-01-02",
            "--records", str(tmp_path / "records"), "--weights-dir", str(tmp_path),
            "--zoo", str(tmp_path / "zoo.json"), *more]


def test_ship_writes_weights_and_card(ship, run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "cards.json").write_text(json.dumps({"old": {"role": "kept", "study": True}}))
    (tmp_path / "zoo.json").write_text(json.dumps({"models": {"old": {}, "tiny-run": {}}}))
    (tmp_path / "records").mkdir()
    rows = [{"image": "a", "stage": s, "psnr_rgb": 20.0 + k, "ssim_rgb": 0.5, "psnr_y": 21.0 + k,
             "ssim_y": 0.6} for k, s in enumerate(["input", "1", "2"])]
    (tmp_path / "records" / "tiny-run.json").write_text(json.dumps(
        {"parts": {"rain800": {"rows": rows}}}))
    ship.main(_args(run_dir, tmp_path, "--scope", "tests only"))
    model = load_weights(tmp_path / "tiny-run.pt")
    ckpt = load_checkpoint(run_dir / "latest.pt")
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())
    cards = json.loads((tmp_path / "cards.json").read_text())
    card = cards["tiny-run"]
    assert set(cards) == {"old", "tiny-run"} and cards["old"]["role"] == "kept"
    assert json.loads((tmp_path / "zoo.json").read_text()) == {"models": {"old": {}}}
    assert (card["steps"], card["steps_planned"], card["study"]) == (3, 3, False)
    assert card["config_changes"] == [[2, {"grad_clip": [None, 1.0]}]]
    assert card["train_config"]["grad_clip"] == 1.0 and card["model_config"]["channels"] == 2
    assert card["training_data"]["data"] == "synthetic"
    assert card["training_data"]["rain preset (synthetic rain)"] == "light"
    assert (card["hardware"], card["date"], card["scope"]) == ("test CPU", "2026-01-02",
                                                               "tests only")
    assert card["metrics"] == {"Rain800 validation split": {
        "psnr_rgb": 22.0, "ssim_rgb": 0.5, "psnr_y": 23.0, "ssim_y": 0.6, "images": 1,
        "rainy_input_psnr_y": 21.0}}
    # three chunks of one step: the time is the sum of each chunk's last elapsed_s
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    chunks = [r["elapsed_s"] for r in rows if r["event"] == "train"]
    assert len(chunks) == 3 and card["train_seconds"] == pytest.approx(sum(chunks), abs=1e-3)
    readme = (tmp_path / "README.md").read_text()
    assert readme.index("## `tiny-run`") < readme.index("## `old` (study)")
    assert "- Rain800 validation split, 1 images: RGB 22.00 dB / 0.500" in readme


def test_ship_with_fewer_stages(ship, run_dir: Path, tmp_path: Path) -> None:
    ship.main(_args(run_dir, tmp_path, "--stages", "1"))
    model = load_weights(tmp_path / "tiny-run.pt")
    assert model.config.stages == 1 and len(model(torch.rand(1, 3, 8, 8))) == 1
    with pytest.raises(SystemExit):
        ship.main(_args(run_dir, tmp_path, "--stages", "3", "--force"))


def test_ship_an_earlier_checkpoint_counts_only_its_steps(ship, run_dir: Path,
                                                          tmp_path: Path) -> None:
    ship.main(_args(run_dir, tmp_path, "--checkpoint", str(run_dir / "at_step_2.pt")))
    card = json.loads((tmp_path / "cards.json").read_text())["tiny-run"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    chunks = [r["elapsed_s"] for r in rows if r["event"] == "train"]
    assert card["steps"] == 2 and card["config_changes"] == []  # clipping came after step 2
    assert card["train_seconds"] == pytest.approx(sum(chunks[:2]), abs=1e-3)


def test_ship_refuses_to_replace_weights_and_needs_a_run(ship, run_dir: Path,
                                                         tmp_path: Path, capsys) -> None:
    (tmp_path / "tiny-run.pt").write_bytes(b"user file")
    with pytest.raises(SystemExit):
        ship.main(_args(run_dir, tmp_path))
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "tiny-run.pt").read_bytes() == b"user file"
    ship.main(_args(run_dir, tmp_path, "--force"))
    assert load_weights(tmp_path / "tiny-run.pt").config == TINY
    with pytest.raises(SystemExit):
        ship.main(_args(tmp_path / "nowhere", tmp_path, "--force"))
    assert "does not exist" in capsys.readouterr().err


def test_ship_an_earlier_checkpoint_names_the_rain_it_trained_on(ship, run_dir: Path,
                                                                 tmp_path: Path) -> None:
    # the synthetic rain switched from heavy to light on a resume at step 2 (after at_step_2.pt)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"event": "resume", "step": 2, "time": 0.0,
                            "changed": {"rain_preset": ["heavy", "light"]}}) + "\n")
    preset = "rain preset (synthetic rain)"
    ship.main(_args(run, tmp_path, "--checkpoint", str(run / "at_step_2.pt")))
    assert json.loads((tmp_path / "cards.json").read_text())["tiny-run"]["training_data"][
        preset] == "heavy"
    ship.main(_args(run, tmp_path, "--force"))
    assert json.loads((tmp_path / "cards.json").read_text())["tiny-run"]["training_data"][
        preset] == "light"
