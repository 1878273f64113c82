"""Training on real pairs: held-out name lists, the rain mix, D4 augmentation, the stage schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.cli import main
from sdsen.cli.train import build_train_data, build_val_data
from sdsen.data import (
    CenterCropPairs,
    PairedImageFolder,
    RandomPatchDataset,
    read_name_list,
    split_by_names,
    write_image,
)
from sdsen.models import ModelConfig, build_model
from sdsen.train import TrainConfig, fit, load_checkpoint, read_metrics

NAMES = ["1", "2", "3", "4", "5"]


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five [clean | rainy] files (PNG) and a val.txt naming two of them, as Rain800 ships."""
    root = tmp_path_factory.mktemp("rain800")
    rng = np.random.default_rng(0)
    for name in NAMES:
        clean = rng.uniform(0.1, 0.6, (40, 48, 3)).astype(np.float32)
        rainy = clean.copy()
        rainy[:, ::6] += 0.3  # vertical streaks
        write_image(root / f"{name}.png", np.concatenate([clean, rainy], axis=1))
    (root / "val.txt").write_text("2.png\n# held out\n\n4\n")
    return root


def test_read_name_list_skips_comments_and_blank_lines(side_by_side: Path) -> None:
    assert read_name_list(side_by_side / "val.txt") == ["2.png", "4"]
    with pytest.raises(FileNotFoundError, match="missing.txt.*Fix"):
        read_name_list(side_by_side / "missing.txt")


def test_split_by_names_matches_file_names_and_stems(side_by_side: Path) -> None:
    folder = PairedImageFolder(side_by_side, layout="side_by_side")
    train, val = split_by_names(folder, read_name_list(side_by_side / "val.txt"))
    assert (train.names, val.names) == (["1", "3", "5"], ["2", "4"])
    assert len(folder) == 5  # the source is untouched
    rainy, clean = val[0]
    assert torch.equal(rainy, folder[1][0]) and torch.equal(clean, folder[1][1])
    with pytest.raises(ValueError, match=r"2 listed name\(s\) match no pair.*7, 8.jpg"):
        split_by_names(folder, ["1", "7", "8.jpg"])
    with pytest.raises(ValueError, match="every pair"):
        split_by_names(folder, NAMES)


def test_patch_mix_shares_and_determinism(side_by_side: Path) -> None:
    folder = PairedImageFolder(side_by_side, layout="side_by_side")
    plain = RandomPatchDataset(folder, patch_size=16, length=200, seed=3)
    mixed = RandomPatchDataset(folder, patch_size=16, length=200, seed=3, synthetic_mix=0.5,
                               clean_mix=0.2, rain_preset="heavy", rain_angles=(-90, 90))
    kinds = {"own": 0, "synthetic": 0, "clean": 0}
    for i in range(200):
        rainy, clean = mixed[i]
        assert torch.equal(rainy, mixed[i][0])  # a function of the index
        own_rain = torch.equal(clean, plain[i][1]) and torch.equal(rainy, plain[i][0])
        kinds["clean" if torch.equal(rainy, clean) else "own" if own_rain else "synthetic"] += 1
        assert torch.equal(clean, plain[i][1])  # the same crop of the same clean photo
    # binomial shares of 200 draws: 30 % own rain, 50 % synthetic, 20 % none
    assert 40 <= kinds["own"] <= 80 and 75 <= kinds["synthetic"] <= 125
    assert 25 <= kinds["clean"] <= 60
    with pytest.raises(ValueError, match="at most 1"):
        RandomPatchDataset(folder, patch_size=16, synthetic_mix=0.8, clean_mix=0.3)


def test_augment_turns_streaks_horizontal(side_by_side: Path) -> None:
    folder = PairedImageFolder(side_by_side, layout="side_by_side")
    ds = RandomPatchDataset(folder, patch_size=24, length=40, augment=True, seed=1)
    horizontal = 0
    for i in range(40):
        rainy, clean = ds[i]
        rain = (rainy - clean).abs().mean(0)
        # streaks are lines of constant rain: along columns (vertical) or rows (horizontal)
        horizontal += bool(rain.std(dim=1).mean() < rain.std(dim=0).mean())
    assert 8 <= horizontal <= 32  # rot90 by 1 or 3 turns them, half the time


def test_center_crop_pairs() -> None:
    pairs = [(torch.arange(3 * 6 * 9.0).reshape(3, 6, 9), torch.zeros(3, 6, 9))]
    rainy, clean = CenterCropPairs(pairs, 4)[0]
    assert rainy.shape == clean.shape == (3, 4, 4)
    assert torch.equal(rainy, pairs[0][0][:, 1:5, 2:6])
    assert CenterCropPairs(pairs, 8)[0][0].shape == (3, 6, 8)  # a short side stays whole


# --------------------------------------------------------------------------- stage schedule
def test_forward_with_fewer_stages_is_the_start_of_the_full_run() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(channels=2, stages=3, blocks=1)).eval()
    x = torch.rand(1, 3, 12, 12)
    full = model(x)
    first = model(x, stages=2)
    assert len(first) == 2 and all(torch.equal(a, b) for a, b in zip(first, full))
    for bad in (0, 4, 1.5, True):
        with pytest.raises(ValueError, match="stages must be an integer from 1 to the model's 3"):
            model(x, stages=bad)


def test_train_config_stage_schedule() -> None:
    cfg = TrainConfig(stage_schedule=[[0, 1], [10, 2], [20, 8]])
    assert [cfg.stages_at(s) for s in (0, 9, 10, 19, 20, 10**6)] == [1, 1, 2, 2, 8, 8]
    for bad in ([[5, 1]], [[0, 1], [0, 2]], [[0, 0]], []):
        with pytest.raises(ValueError, match="stage_schedule"):
            TrainConfig(stage_schedule=bad)
    with pytest.raises(ValueError, match="synthetic_mix"):
        TrainConfig(synthetic_mix=1.5)
    with pytest.raises(ValueError, match="rain_angles"):
        TrainConfig(rain_angles=[30, -30])
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def _fit_cfg(**kw: object) -> TrainConfig:
    base = {"steps": 4, "batch_size": 2, "patch_size": 16, "log_every": 1, "val_every": 2,
            "ckpt_every": 2, "keep_every": 0, "log_images_every": 0, "tensorboard": False,
            "device": "cpu", "stage_schedule": [[0, 1], [2, 3]], "val_images": 1}
    base.update(kw)
    return TrainConfig.preset("quick", **base)


def test_fit_follows_the_stage_schedule_and_resumes_exactly(
        side_by_side: Path, tmp_path: Path) -> None:
    folder = PairedImageFolder(side_by_side, layout="side_by_side")
    train, val = split_by_names(folder, ["2", "4"])
    data = RandomPatchDataset(train, patch_size=16, length=8, augment=True, synthetic_mix=0.5)
    cfg = _fit_cfg()

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(ModelConfig(channels=2, stages=3, blocks=1))

    one_go = model()
    hist = fit(one_go, data, val, cfg, tmp_path / "a", progress=False)
    assert [len(p) for p in hist["loss_stages"]] == [1, 1, 3, 3]
    assert [len(v["psnr_y"]) for v in hist["val"]] == [1, 3]  # the stages trained so far
    assert [r["stages"] for r in read_metrics(tmp_path / "a", "train")] == [1, 1, 3, 3]
    chunked = model()
    fit(chunked, data, val, cfg.replace(steps=2), tmp_path / "b", progress=False)
    fit(chunked, data, val, cfg, tmp_path / "b", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(one_go.state_dict().values(),
                                                 chunked.state_dict().values()))
    with pytest.raises(ValueError, match="asks for 4 stages, but the model has 3"):
        fit(model(), data, None, cfg.replace(stage_schedule=[[0, 4]]), tmp_path / "c",
            progress=False)


# --------------------------------------------------------------------------- command line
def _train(run_dir: Path, data: Path, *extra: str) -> int:
    args = ["train", "--preset", "quick", "--data", str(data), "--run-dir", str(run_dir),
            "--steps", "2", "--batch-size", "2", "--patch-size", "16", "--val-every", "2",
            "--no-progress", "--no-tensorboard", "--device", "cpu",
            "--model-config", "channels=2", "stages=2", "blocks=1"]
    return main([*args, *extra])


def test_cli_holds_out_the_folders_val_list(side_by_side: Path, tmp_path: Path) -> None:
    assert _train(tmp_path / "run", side_by_side, "--augment", "--synthetic-mix", "0.25",
                  "--clean-mix", "0.05", "--rain-angles", "-90", "90", "--stage-schedule",
                  "0:1,1:2", "--val-crop", "24") == 0
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["val_list"] == str((side_by_side / "val.txt").resolve())
    cfg = TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / "latest.pt")["train_config"])
    assert (cfg.augment, cfg.synthetic_mix, cfg.clean_mix, cfg.rain_angles) == (
        True, 0.25, 0.05, [-90.0, 90.0])
    assert cfg.stage_schedule == [[0, 1], [1, 2]] and cfg.val_crop == 24
    train = build_train_data(data["data"], cfg, torch.device("cpu"), "mixed", "auto",
                             data["val_list"])
    val = build_val_data(None, data["data"], cfg, "mixed", "auto", data["val_list"])
    assert train.folder.names == ["1", "3", "5"] and val.names == ["2", "4"]
    assert val[0][0].shape == (3, 24, 24)
    (last,) = read_metrics(tmp_path / "run", "val")
    assert last["images"] == 2 and len(last["psnr_y"]) == 2


def test_cli_val_list_none_and_errors(side_by_side: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path / "all", side_by_side, "--val-list", "none") == 0
    assert json.loads((tmp_path / "all" / "data.json").read_text())["val_list"] is None
    bad = tmp_path / "bad.txt"
    bad.write_text("9.jpg\n")
    assert _train(tmp_path / "x", side_by_side, "--val-list", str(bad)) == 1
    assert "--val-list: 1 listed name(s) match no pair" in capsys.readouterr().err
    assert _train(tmp_path / "y", side_by_side, "--stage-schedule", "0-1") == 1
    assert "--stage-schedule must be STEP:STAGES pairs" in capsys.readouterr().err
    assert _train(tmp_path / "z", side_by_side, "--stage-schedule", "0:3") == 1
    assert "asks for 3 stages, but the model has 2" in capsys.readouterr().err


def test_cli_resume_finds_a_moved_data_folder_and_val_list(side_by_side: Path,
                                                           tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(side_by_side, data)
    assert _train(tmp_path / "run", data) == 0
    assert _train(tmp_path / "run", data, "--resume", "--steps", "3",
                  "--val-list", str(side_by_side / "val.txt")) == 1  # not moved: refused
    err = capsys.readouterr().err
    assert "--val-list" in err and "differs from the run's" in err
    moved = tmp_path / "moved"
    data.rename(moved)
    assert _train(tmp_path / "run", moved, "--resume", "--steps", "3",
                  "--val-list", str(moved / "val.txt")) == 0
    saved = json.loads((tmp_path / "run" / "data.json").read_text())
    assert saved["val_list"] == str((moved / "val.txt").resolve())
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["step"] == 3


def test_cli_milestones(side_by_side: Path, tmp_path: Path) -> None:
    assert _train(tmp_path / "run", side_by_side, "--milestones", "1") == 0
    cfg = load_checkpoint(tmp_path / "run" / "latest.pt")["train_config"]
    assert cfg["milestones"] == [1]
    # on resume a new schedule is a recipe change: only on purpose, and recorded
    assert _train(tmp_path / "run", side_by_side, "--resume", "--steps", "3",
                  "--milestones", "2") == 1
    assert _train(tmp_path / "run", side_by_side, "--resume", "--steps", "3",
                  "--milestones", "2", "--change-recipe") == 0
    from sdsen.train import config_changes

    assert config_changes(tmp_path / "run")[-1] == (2, {"milestones": [[1], [2]], "steps": [2, 3]})


def test_cli_rain_preset_changes_on_resume_only_on_purpose(
        side_by_side: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdsen.train import config_changes

    run = tmp_path / "run"
    assert _train(run, side_by_side, "--synthetic-mix", "0.5", "--rain-preset", "mixed") == 0
    more = ["--resume", "--steps", "3", "--rain-preset", "rain800"]
    assert _train(run, side_by_side, *more) == 1
    err = capsys.readouterr().err
    assert "--rain-preset rain800 differs from the run's mixed" in err and "--change-recipe" in err
    assert _train(run, side_by_side, *more, "--change-recipe") == 0
    assert json.loads((run / "data.json").read_text())["rain_preset"] == "rain800"
    assert config_changes(run)[-1] == (2, {"steps": [2, 3], "rain_preset": ["mixed", "rain800"]})
    assert load_checkpoint(run / "latest.pt")["step"] == 3


def test_zero_links_start_later_stages_as_the_first_and_resume_exactly(
        side_by_side: Path, tmp_path: Path) -> None:
    folder = PairedImageFolder(side_by_side, layout="side_by_side")
    data = RandomPatchDataset(split_by_names(folder, ["2", "4"])[0], patch_size=16, length=8)
    cfg = _fit_cfg(stage_schedule=[[0, 1], [2, 2]], zero_links=True, stage_warmup=2,
                   val_every=0, steps=4, milestones=[100])

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(ModelConfig(channels=2, stages=3, blocks=1))

    one_go = model()
    hist = fit(one_go, data, None, cfg.replace(steps=2), tmp_path / "a", progress=False)
    # after the one-stage steps the links are still zero: stage 2 is stage 1 on O - R_1
    assert all(float(link.conv0.weight.detach().abs().max()) == 0 for link in one_go.connect_layers)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        r = one_go(x, stages=2)
        assert torch.equal(r[1], one_go(x - r[0], stages=1)[0])
    hist = fit(one_go, data, None, cfg, tmp_path / "a", progress=False)
    assert hist["lr"] == pytest.approx([cfg.lr / 2, cfg.lr])  # warm-up after 1 -> 2 stages
    assert all(float(link.conv0.weight.detach().abs().max()) > 0 for link in one_go.connect_layers)
    # switched on at a resume before any multi-stage step: the same run, bit for bit
    late = model()
    fit(late, data, None, cfg.replace(zero_links=False, steps=1), tmp_path / "b",
        progress=False)
    with pytest.warns(UserWarning, match="zero_links"):
        fit(late, data, None, cfg, tmp_path / "b", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(one_go.state_dict().values(),
                                                 late.state_dict().values()))
    # once several stages have trained, zero_links no longer touches the links
    links = [link.conv0.weight.clone() for link in late.connect_layers]
    fit(late, data, None, cfg.replace(steps=5), tmp_path / "b", progress=False)
    assert not all(torch.equal(a, b.conv0.weight) for a, b in zip(links, late.connect_layers))
    assert TrainConfig(stage_schedule=[[0, 1], [3, 2]]).multi_stage_before(4)
    assert not TrainConfig(stage_schedule=[[0, 1], [3, 2]]).multi_stage_before(3)


def test_a_field_the_checkpoint_predates_is_recorded_when_turned_on(tmp_path: Path) -> None:
    from sdsen.data import SyntheticRainDataset
    from sdsen.train import config_changes

    data = SyntheticRainDataset("test", patch_size=16, length=8, preset="light")
    cfg = _fit_cfg(stage_schedule=None, val_every=0, steps=1)
    fit(build_model(ModelConfig(channels=2, stages=2, blocks=1)), data, None, cfg, tmp_path,
        progress=False)
    ckpt = torch.load(tmp_path / "latest.pt", weights_only=True)
    del ckpt["train_config"]["stage_warmup"]  # as written before the field existed
    torch.save(ckpt, tmp_path / "latest.pt")
    with pytest.warns(UserWarning, match=r"changed \['stage_warmup'\]"):
        fit(build_model(ModelConfig(channels=2, stages=2, blocks=1)), data, None,
            cfg.replace(steps=2, stage_warmup=5), tmp_path, progress=False)
    assert config_changes(tmp_path)[-1] == (1, {"stage_warmup": [0, 5], "steps": [1, 2]})
