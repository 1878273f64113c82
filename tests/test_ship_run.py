"""scripts/ship_run.py: an sdsen train run folder becomes shipped weights and a zoo.json entry."""

from __future__ import annotations

import json
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
    (run / "data.json").write_text(json.dumps({"data": "synthetic", "rain_preset": "light"}))
    return run


def _args(run: Path, tmp_path: Path, *more: str) -> list[str]:
    return [str(run), "--name", "tiny-run", "--role", "a test", "--hardware", "test CPU",
            "--command", "sdsen train ...", "--date", "2026-01-02",
            "--zoo", str(tmp_path / "zoo.json"), "--weights-dir", str(tmp_path), *more]


def test_ship_writes_weights_and_entry(ship, run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "zoo.json").write_text(json.dumps({"hardware": "x", "models": {"old": {}}}))
    ship.main(_args(run_dir, tmp_path))
    model = load_weights(tmp_path / "tiny-run.pt")
    ckpt = load_checkpoint(run_dir / "latest.pt")
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())
    zoo = json.loads((tmp_path / "zoo.json").read_text())
    entry = zoo["models"]["tiny-run"]
    assert set(zoo["models"]) == {"old", "tiny-run"} and zoo["hardware"] == "x"
    assert (entry["steps"], entry["steps_planned"], entry["stopped_early"]) == (3, 3, False)
    assert entry["config_changes"] == [[2, {"grad_clip": [None, 1.0]}]]
    assert entry["train_config"]["grad_clip"] == 1.0 and entry["model_config"]["channels"] == 2
    assert entry["preset"] == "light" and entry["augment"] is False  # as sdsen train wrote it
    assert len(entry["final_loss_stages"]) == TINY.stages
    assert (entry["hardware"], entry["date"], entry["run_dir"]) == (
        "test CPU", "2026-01-02", str(run_dir))
    # three chunks of one step: the time is the sum of each chunk's last elapsed_s
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    chunks = [r["elapsed_s"] for r in rows if r["event"] == "train"]
    assert len(chunks) == 3 and entry["train_seconds"] == pytest.approx(sum(chunks), abs=1e-3)


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
    assert "holds no latest.pt" in capsys.readouterr().err
