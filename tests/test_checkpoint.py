"""sdsen.train.checkpoint: atomic writes, weights_only loading, config checks, RNG states."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.models import ModelConfig, build_model
from sdsen.train import (
    ConfigMismatchError,
    TrainConfig,
    fit,
    get_rng_state,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    set_rng_state,
)

TINY = ModelConfig(channels=2, stages=2, blocks=1)


def _setup(cfg: ModelConfig = TINY):
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 3], gamma=0.1)
    x = torch.rand(1, 3, 12, 12)
    sum(r.sum() for r in model(x)).backward()
    opt.step()
    sched.step()
    return model, opt, sched


def test_roundtrip_weights_only(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    path = save_checkpoint(
        tmp_path / "sub" / "latest.pt",
        model,
        opt,
        sched,
        step=7,
        train_config=TrainConfig.preset("quick").to_dict(),
        data_state={"step": 7, "seed": 0},
    )
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temp file left
    raw = torch.load(path, weights_only=True)  # only tensors and plain containers
    assert raw["step"] == 7 and raw["model_config"]["channels"] == 2
    assert raw["train_config"]["steps"] == 150

    torch.manual_seed(1)
    model2 = build_model(TINY)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.MultiStepLR(opt2, milestones=[2, 3], gamma=0.1)
    payload = load_checkpoint(path, model2, opt2, sched2)
    assert payload["data_state"] == {"step": 7, "seed": 0}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert sched2.last_epoch == sched.last_epoch
    for _ in range(3):  # the restored scheduler decays at the same steps
        sched.step()
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr()
    st1, st2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(st1[k]["exp_avg"], st2[k]["exp_avg"]) for k in st1)

    rebuilt = model_from_checkpoint(path)
    assert not rebuilt.training
    x = torch.rand(1, 3, 13, 17)
    assert torch.equal(rebuilt.derain(x), model.derain(x))


def test_overwrite_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, opt, sched = _setup()
    path = save_checkpoint(tmp_path / "latest.pt", model, opt, sched, step=1)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, sched, step=2)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_architecture_mismatch_names_both_configs(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    path = save_checkpoint(tmp_path / "latest.pt", model, opt, sched, step=1)
    other = build_model(ModelConfig(channels=3, stages=2, blocks=1))
    with pytest.raises(ConfigMismatchError) as err:
        load_checkpoint(path, other)
    msg = str(err.value)
    assert "'channels': 2" in msg and "'channels': 3" in msg
    assert "channels: checkpoint=2 model=3" in msg


def test_fit_resume_refuses_other_architecture(tmp_path: Path) -> None:
    data = [(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))]
    cfg = TrainConfig.preset("quick", steps=1, batch_size=2, tensorboard=False, device="cpu")
    fit(build_model(TINY), data, None, cfg, tmp_path, progress=False)
    with pytest.raises(ConfigMismatchError, match="stages: checkpoint=2 model=3"):
        fit(
            build_model(ModelConfig(channels=2, stages=3, blocks=1)),
            data,
            None,
            cfg.replace(steps=2),
            tmp_path,
            progress=False,
        )


def test_not_a_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "x.pt"
    torch.save({"net": {}}, bad)
    with pytest.raises(ValueError, match="not an sdsen training checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_rng_state_roundtrip(tmp_path: Path) -> None:
    state = get_rng_state()
    torch.save(state, tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
