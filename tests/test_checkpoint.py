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
    with pytest.raises(ValueError, match=r"junk\.pt is not a readable PyTorch file \(9 bytes"):
        load_checkpoint(tmp_path / "junk.pt")


def _run_with_snapshots(run: Path, steps: int, keep_every: int) -> Path:
    """A finished run of ``steps`` steps keeping ``step_N.pt`` every ``keep_every``."""
    data = [(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))]
    cfg = TrainConfig.preset("quick", steps=steps, batch_size=2, tensorboard=False, device="cpu",
                             keep_every=keep_every, log_images_every=0)
    fit(build_model(TINY), data, None, cfg, run, progress=False)
    return run / "latest.pt"


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_a_damaged_latest_pt_names_the_snapshots_to_restore(tmp_path: Path, damage: str) -> None:
    latest = _run_with_snapshots(tmp_path / "run", steps=4, keep_every=1)
    good = latest.read_bytes()
    latest.write_bytes({"truncated": good[: len(good) // 2], "empty": b"", "text": b"hello\n"}[
        damage])
    size = latest.stat().st_size
    with pytest.raises(ValueError) as err:
        load_checkpoint(latest)
    msg = str(err.value)
    assert msg == (
        f"checkpoint {latest} is not a readable PyTorch file ({size:,} bytes; truncated or "
        "corrupt?). Fix: restore it from a snapshot of the run (step_4.pt, step_3.pt, step_2.pt "
        f"and 1 older), e.g. `cp {latest.parent / 'step_4.pt'} {latest}`; or start over with "
        f"`sdsen clean {latest.parent}` or a new --run-dir"
    )
    assert err.value.__cause__ is not None  # torch's own error stays chained
    # the fix works: the snapshot resumes
    (latest.parent / "step_4.pt").replace(latest)
    assert load_checkpoint(latest)["step"] == 4


def test_a_damaged_checkpoint_without_snapshots_or_run(tmp_path: Path) -> None:
    latest = _run_with_snapshots(tmp_path / "run", steps=1, keep_every=0)
    latest.write_bytes(b"")
    with pytest.raises(ValueError, match=(
            r"\(0 bytes; truncated or corrupt\?\)\. Fix: the run has no step_\*\.pt snapshot to "
            r"restore it from; start over with `sdsen clean .*run` or a new --run-dir$")):
        load_checkpoint(latest)
    data = [(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))]
    cfg = TrainConfig.preset("quick", steps=2, batch_size=2, tensorboard=False, device="cpu")
    with pytest.raises(ValueError, match="latest.pt is not a readable PyTorch file"):
        fit(build_model(TINY), data, None, cfg, latest.parent, progress=False)  # resume
    loose = tmp_path / "model.pt"
    loose.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"\(7 bytes; truncated or corrupt\?\)\. Fix: pass "
                       r"another checkpoint$"):
        load_checkpoint(loose)
    torch.save(torch.nn.Linear(2, 2), loose)  # a pickled module, not tensors
    with pytest.raises(ValueError, match=r"holds pickled Python objects \(such as "
                       r"torch\.nn\.modules\.linear\.Linear\), which torch\.load\("
                       r"weights_only=True\) refuses to run: it is not an sdsen file\. Fix"):
        load_checkpoint(loose)


def test_rng_state_roundtrip(tmp_path: Path) -> None:
    state = get_rng_state()
    torch.save(state, tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
