"""sdsen.train: presets, fit, logging, exact resume, divergence handling."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.data import DeviceRainBatches, SyntheticRainDataset
from sdsen.models import ModelConfig, build_model
from sdsen.train import (
    RUN_MARKER,
    TrainConfig,
    TrainingDivergedError,
    config_changes,
    fit,
    is_run_dir,
    load_checkpoint,
    make_grid,
    read_metrics,
    read_tensorboard,
    resolve_amp,
    resolve_device,
    stage_loss,
)

TINY = ModelConfig(channels=2, stages=2, blocks=1)


def _cfg(**kw: object) -> TrainConfig:
    base = {
        "steps": 4,
        "batch_size": 2,
        "patch_size": 16,
        "log_every": 2,
        "val_every": 0,
        "ckpt_every": 2,
        "keep_every": 0,
        "log_images_every": 0,
        "tensorboard": False,
        "device": "cpu",  # exact resume is a CPU guarantee (cuDNN may be nondeterministic)
    }
    base.update(kw)
    return TrainConfig.preset("quick", **base)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(TINY)


@pytest.fixture(scope="module")
def train_set() -> SyntheticRainDataset:
    return SyntheticRainDataset("test", patch_size=16, length=16, preset="light", seed=0)


@pytest.fixture(scope="module")
def val_set() -> SyntheticRainDataset:
    return SyntheticRainDataset(
        "test", patch_size=24, length=1, preset="light", seed=1, crops="center"
    )


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- config
def test_presets() -> None:
    off = TrainConfig.preset("official")
    assert (off.batch_size, off.patch_size, off.lr, off.steps) == (50, 64, 5e-4, 20_000)
    assert off.milestones == [15_000, 17_500] and off.gamma == 0.1
    quick, cpu = TrainConfig.preset("quick"), TrainConfig.preset("cpu")
    assert quick.steps <= 500 and quick.batch_size * quick.patch_size**2 <= 8 * 48 * 48
    assert quick.steps < cpu.steps < off.steps
    assert all(m < cpu.steps for m in cpu.milestones)
    assert off.grad_clip is None and quick.grad_clip == cpu.grad_clip == 1.0  # the recurrence
    # steps override rescales the official decay points
    short = TrainConfig.preset("official", steps=2000)
    assert short.milestones == [1500, 1750] and short.name == "official"
    assert TrainConfig.preset("quick", steps=4).milestones == [3]  # 3 and 3.5: merged, not x0.01
    # JSON round trip
    assert TrainConfig.from_dict(json.loads(cpu.to_json())) == cpu
    with pytest.raises(ValueError, match="unknown training preset"):
        TrainConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.preset("quick", batch=3)
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")


def test_stage_loss_and_helpers() -> None:
    o, b = torch.rand(2, 3, 5, 7), torch.rand(2, 3, 5, 7)
    r = o - b
    total, parts = stage_loss([r, torch.zeros_like(r), 0.5 * r], o, b)
    assert float(parts[0]) == 0.0
    assert torch.allclose(parts[1], (r**2).mean()) and torch.allclose(parts[2], (r**2).mean() / 4)
    assert torch.allclose(total, parts[1] + parts[2])  # the sum over every stage, not the last
    assert make_grid(torch.rand(6, 3, 4, 5), nrow=3, padding=1).shape == (3, 11, 19)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_amp("off", torch.device("cpu")) is None


# --------------------------------------------------------------------------- fit
def test_fit_writes_run_folder(tmp_path: Path, train_set, val_set) -> None:
    cfg = _cfg(val_every=2, log_images_every=2, keep_every=4, tensorboard=True)
    model = _model()
    hist = fit(model, train_set, val_set, cfg, tmp_path, progress=False)
    assert hist["start_step"] == 0 and hist["final_step"] == 4
    assert len(hist["loss"]) == len(hist["lr"]) == len(hist["loss_stages"]) == 4
    assert all(len(s) == TINY.stages for s in hist["loss_stages"])
    assert hist["loss"] == pytest.approx([sum(s) for s in hist["loss_stages"]], rel=1e-5)
    assert [v["step"] for v in hist["val"]] == [2, 4]
    assert len(hist["val"][-1]["psnr"]) == TINY.stages and hist["val"][-1]["images"] == 1
    names = {p.name for p in tmp_path.iterdir()}
    assert {RUN_MARKER, "config.json", "metrics.jsonl", "latest.pt", "step_4.pt"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert is_run_dir(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train"] == cfg.to_dict() and saved["model"]["channels"] == 2
    train_rows = read_metrics(tmp_path, "train")
    assert [r["step"] for r in train_rows] == [2, 4]
    assert {"loss", "loss_stages", "lr", "grad_norm_max"} <= set(train_rows[0])
    assert all(0 < r["grad_norm_max"] < float("inf") for r in train_rows)
    assert [r["step"] for r in read_metrics(tmp_path, "val")] == [2, 4]
    ckpt = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["train_config"] == cfg.to_dict()


def test_tensorboard_keeps_the_checkpoint_step_on_resume(tmp_path: Path, train_set) -> None:
    """Events up to the checkpoint survive a resume (as in metrics.jsonl); later ones go."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(_model(), train_set, None, _cfg(steps=4, tensorboard=True), tmp_path, progress=False)
    with pytest.warns(UserWarning, match=r"changed \['milestones'\]"):  # milestones scale with steps
        fit(_model(), train_set, None, _cfg(steps=6, tensorboard=True), tmp_path, progress=False)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6]
    assert [r["step"] for r in read_metrics(tmp_path, "train")] == [2, 4, 6]


def test_tensorboard_record_reads_back_what_fit_logged(tmp_path: Path, train_set) -> None:
    """read_tensorboard gives the scalars of metrics.jsonl and the image grids, no server."""
    import matplotlib

    matplotlib.use("agg")
    from sdsen.viz.training import plot_tensorboard_images

    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        read_tensorboard(tmp_path)
    fit(_model(), train_set, None, _cfg(tensorboard=True, log_images_every=2), tmp_path,
        progress=False)
    record = read_tensorboard(tmp_path)
    rows = read_metrics(tmp_path, "train")
    assert record.scalars["train/loss"] == [(r["step"], pytest.approx(r["loss"])) for r in rows]
    assert [s for s, _ in record.scalars["train/lr"]] == [2, 4]
    shots = record.images["train/rainy_derained_clean"]
    assert [s for s, _ in shots] == [2, 4]
    # make_grid of 3 rows (rainy, derained, clean) of 2 patches of 16 px with 2 px padding
    assert shots[0][1].shape == (3 * 18 + 2, 2 * 18 + 2, 3) and shots[0][1].dtype == np.uint8
    assert (shots[0][1][0] == 255).all()  # the white padding row
    table = record.table()
    assert "| `train/loss` | scalar | 2 | 2-4 |" in table
    assert "| `train/rainy_derained_clean` | image | 2 | 2-4 | 56 x 38 px (H x W) |" in table
    fig = plot_tensorboard_images(record)
    assert len(fig.axes) == 2 and "step 4" in fig.axes[1].get_title()
    with pytest.raises(KeyError, match="no image tag 'val/x'"):
        plot_tensorboard_images(record, "val/x")


def test_resume_is_bit_identical_dataset(tmp_path: Path, train_set) -> None:
    cfg = _cfg(steps=4, milestones=[3])  # the lr decay falls in the resumed half
    one_go = _model()
    straight = fit(one_go, train_set, None, cfg, tmp_path / "a", progress=False)
    assert straight["lr"] == pytest.approx([cfg.lr] * 3 + [cfg.lr * cfg.gamma])  # decay after step 3

    split = _model()
    fit(split, train_set, None, cfg.replace(steps=2), tmp_path / "b", progress=False)
    resumed = _model(seed=99)  # different init: everything must come from the checkpoint
    hist = fit(resumed, train_set, None, cfg, tmp_path / "b", progress=False)
    assert hist["start_step"] == 2 and len(hist["loss"]) == 2
    assert hist["lr"] == pytest.approx(straight["lr"][2:])  # the schedule resumes too
    assert _same_weights(one_go, resumed)
    assert not _same_weights(one_go, _model())  # training changed the weights
    # metrics.jsonl holds one continuous history
    assert [r["step"] for r in read_metrics(tmp_path / "b", "train")] == [2, 4]


def test_time_limited_chunks_resume_bit_identically(tmp_path: Path, train_set) -> None:
    cfg = _cfg(steps=4, milestones=[3], ckpt_every=0)  # no periodic checkpoint to fall back on
    one_go = _model()
    fit(one_go, train_set, None, cfg, tmp_path / "a", progress=False)

    chunked = _model()
    hist = fit(chunked, train_set, None, cfg, tmp_path / "b", progress=False, max_seconds=0)
    assert hist["stopped_early"] and hist["final_step"] == 1
    assert load_checkpoint(tmp_path / "b" / "latest.pt")["step"] == 1
    for step in (2, 3):  # one step per chunk, each from a fresh model: all from latest.pt
        hist = fit(_model(seed=7), train_set, None, cfg, tmp_path / "b", progress=False,
                   max_seconds=0)
        assert hist["stopped_early"] and hist["final_step"] == step and len(hist["loss"]) == 1
    resumed = _model(seed=7)
    hist = fit(resumed, train_set, None, cfg, tmp_path / "b", progress=False, max_seconds=0)
    assert not hist["stopped_early"] and hist["final_step"] == 4
    assert _same_weights(one_go, resumed)


def test_resume_records_changed_settings(tmp_path: Path, train_set) -> None:
    cfg = _cfg(steps=4, ckpt_every=0)
    fit(_model(), train_set, None, cfg, tmp_path, progress=False, max_seconds=0)  # step 1
    fit(_model(), train_set, None, cfg, tmp_path, progress=False, max_seconds=0)  # unchanged
    with pytest.warns(UserWarning, match=r"changed \['lr'\]"):
        fit(_model(), train_set, None, cfg.replace(grad_clip=0.5, lr=cfg.lr / 2), tmp_path,
            progress=False)
    resumes = read_metrics(tmp_path, "resume")
    assert [(r["step"], r["changed"]) for r in resumes[:1]] == [(1, {})]
    assert config_changes(tmp_path) == [
        (2, {"grad_clip": [cfg.grad_clip, 0.5], "lr": [cfg.lr, cfg.lr / 2]})
    ]
    # config.json holds the latest settings; the change survives a later resume's trimming
    assert json.loads((tmp_path / "config.json").read_text())["train"]["grad_clip"] == 0.5
    fit(_model(), train_set, None, cfg.replace(grad_clip=0.5, lr=cfg.lr / 2, steps=5), tmp_path,
        progress=False)
    assert config_changes(tmp_path)[0][0] == 2 and config_changes(tmp_path)[1] == (
        4, {"steps": [4, 5]}
    )


def test_resume_may_switch_to_the_equivariant_decoder(tmp_path: Path, train_set) -> None:
    from sdsen.models import to_equivariant_decoder
    from sdsen.train.checkpoint import equivariant_decoder_payload

    cfg = _cfg(steps=4)
    fit(_model(), train_set, None, cfg.replace(steps=2), tmp_path, progress=False)
    before = load_checkpoint(tmp_path / "latest.pt")
    official = build_model(TINY)
    official.load_state_dict(before["model"])
    switched = equivariant_decoder_payload(before)
    eq_cfg = dataclasses.replace(TINY, decoder="equivariant")
    assert switched["model_config"] == dataclasses.asdict(eq_cfg)
    i = [n for n, _ in official.named_parameters()].index("dec.0.weight")
    moment = before["optimizer"]["state"][i]["exp_avg"]
    assert torch.equal(switched["optimizer"]["state"][i]["exp_avg"],
                       moment.reshape(to_equivariant_decoder(official).dec[0].weight.shape))

    # resuming with the switched model: one continuous run, the change recorded
    model = build_model(eq_cfg)
    with pytest.warns(UserWarning, match=r"changed \['decoder'\]"):
        hist = fit(model, train_set, None, cfg, tmp_path, progress=False)
    assert hist["start_step"] == 2 and hist["final_step"] == 4
    assert config_changes(tmp_path) == [(2, {"steps": [2, 4], "decoder": ["official", "equivariant"]})]
    assert load_checkpoint(tmp_path / "latest.pt")["model_config"]["decoder"] == "equivariant"
    # any other change of the model is still refused
    with pytest.raises(ValueError, match="different architecture"):
        fit(build_model(dataclasses.replace(TINY, channels=3)), train_set, None,
            cfg.replace(steps=5), tmp_path, progress=False)


def test_data_order_does_not_depend_on_workers(tmp_path: Path, train_set) -> None:
    cfg = _cfg(steps=2, ckpt_every=0)
    a, b = _model(), _model()
    fit(a, train_set, None, cfg, tmp_path / "a", progress=False)
    fit(b, train_set, None, cfg.replace(num_workers=2), tmp_path / "b", progress=False)
    assert _same_weights(a, b)


def test_resume_is_bit_identical_device_batches(tmp_path: Path) -> None:
    def stream() -> DeviceRainBatches:
        return DeviceRainBatches("test", patch_size=16, batch_size=2, preset="light", seed=3)

    cfg = _cfg(steps=4)
    one_go = _model()
    fit(one_go, stream(), None, cfg, tmp_path / "a", progress=False)
    split = _model()
    fit(split, stream(), None, cfg.replace(steps=2), tmp_path / "b", progress=False)
    resumed = _model(seed=5)
    fit(resumed, stream(), None, cfg, tmp_path / "b", progress=False)
    assert _same_weights(one_go, resumed)
    assert load_checkpoint(tmp_path / "b" / "latest.pt")["data_state"]["step"] == 4


class _NaNAfter:
    """Iterable of batches whose ``k``-th batch (1-based) gives an infinite loss."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        i = 0
        while True:
            i += 1
            clean = torch.rand(2, 3, 16, 16, generator=g)
            rainy = (clean + 0.2).clamp(0, 1)
            if i == self.k:
                clean[0, 0, 0, 0] = -1e30  # target R = O - B overflows when squared
            yield rainy, clean


def test_grad_clip_limits_the_update(tmp_path: Path, train_set) -> None:
    # Adam's first step moves every weight by about lr whatever the gradient's scale; a
    # gradient clipped to a norm far below Adam's eps (1e-8) barely moves anything.
    start = _model()
    moved = {}
    for clip in (None, 1e-12):
        model = _model()
        fit(model, train_set, None, _cfg(steps=1, grad_clip=clip), tmp_path / str(clip),
            progress=False)
        moved[clip] = max((a - b).abs().max().item()
                          for a, b in zip(model.parameters(), start.parameters()))
        row = read_metrics(tmp_path / str(clip), "train")[-1]
        assert row["grad_norm_max"] > 1e-6  # logged before clipping
    lr = _cfg().lr
    assert moved[None] == pytest.approx(lr, rel=0.01)
    assert moved[1e-12] < 1e-3 * lr


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    model = _model()
    cfg = _cfg(steps=6, ckpt_every=2)
    with pytest.raises(TrainingDivergedError, match=r"(nan|inf) at step 4.*latest\.pt \(step 2\)"):
        fit(model, _NaNAfter(4), None, cfg, tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN step applied


def test_weights_that_turn_nan_under_a_finite_loss_are_never_saved(
    tmp_path: Path, train_set, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss of step 3 is finite, but its update makes the weights NaN: the step-3
    checkpoint must not be written (it would be called "last good" at the next step)."""
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def poisoning_clip(params, max_norm, *args, **kwargs):
        params = list(params)
        norm = real_clip(params, max_norm, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            for q in params:
                q.grad.fill_(float("nan"))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", poisoning_clip)
    with pytest.raises(TrainingDivergedError, match=r"weights became NaN/inf in step 3.*\(step 2\)"):
        fit(_model(), train_set, None, _cfg(steps=6, ckpt_every=1), tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_bad_training_data_messages(tmp_path: Path) -> None:
    single = [(torch.rand(3, 16, 16), torch.rand(3, 16, 16))]  # a list of pairs, not batches
    with pytest.raises(ValueError, match="iterable of batches"):
        fit(_model(), single, None, _cfg(steps=1), tmp_path, progress=False)


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_fit_cuda_amp(tmp_path: Path, amp: str) -> None:
    stream = DeviceRainBatches(
        "test", patch_size=16, batch_size=2, preset="light", device="cuda", seed=0
    )
    bench = torch.backends.cudnn.benchmark
    model = _model()
    hist = fit(model, stream, None, _cfg(steps=3, device="cuda", amp=amp), tmp_path, progress=False)
    assert all(np.isfinite(hist["loss"]))
    assert next(model.parameters()).device.type == "cuda"
    assert torch.backends.cudnn.benchmark == bench  # restored after fit


# --------------------------------------------------------------------------- fine-tuning
def test_init_weights_starts_from_given_weights(tmp_path: Path, train_set) -> None:
    from sdsen.pretrained import save_weights
    from sdsen.train import ConfigMismatchError

    start = _model(seed=7)
    save_weights(start, tmp_path / "start.pt")
    # lr so small that one Adam step leaves float32 weights unchanged: the run starts there
    cfg = _cfg(steps=1, lr=1e-30, ckpt_every=1, init_weights=str(tmp_path / "start.pt"))
    tuned = _model(seed=0)
    assert not _same_weights(tuned, start)
    fit(tuned, train_set, None, cfg, tmp_path / "a", progress=False)
    assert _same_weights(tuned, start)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["train"]["init_weights"] == str(tmp_path / "start.pt")
    # a training checkpoint works too; resuming ignores init_weights (the run's own weights)
    from_ckpt = _model(seed=1)
    fit(from_ckpt, train_set, None, cfg.replace(init_weights=str(tmp_path / "a" / "latest.pt")),
        tmp_path / "b", progress=False)
    assert _same_weights(from_ckpt, start)
    resumed = _model(seed=2)
    fit(resumed, train_set, None, cfg.replace(steps=2, init_weights=str(tmp_path / "start.pt")),
        tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b" / "latest.pt")["step"] == 2

    with pytest.raises(ConfigMismatchError, match="channels"):
        fit(build_model(ModelConfig(channels=3, stages=2, blocks=1)), train_set, None, cfg,
            tmp_path / "c", progress=False)
    with pytest.raises(FileNotFoundError, match="neither shipped weights"):
        fit(_model(), train_set, None, cfg.replace(init_weights="no-such-model"),
            tmp_path / "d", progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"init_weights file .*junk\.pt is not a readable "
                       r"PyTorch file \(16 bytes; truncated or corrupt\?\)\. Fix: copy"):
        fit(_model(), train_set, None, cfg.replace(init_weights=str(tmp_path / "junk.pt")),
            tmp_path / "e", progress=False)


def test_init_weights_from_shipped_name(tmp_path: Path, train_set) -> None:
    from sdsen.pretrained import load_pretrained

    shipped = load_pretrained("dsen")
    cfg = _cfg(steps=1, lr=1e-30, init_weights="dsen")
    tuned = build_model(shipped.config)
    fit(tuned, train_set, None, cfg, tmp_path, progress=False)
    assert _same_weights(tuned.cpu(), shipped)


# --------------------------------------------------------------------------- run folder checks
def _user_folder(root: Path) -> dict[str, bytes]:
    """A folder of someone's own files, some named like run records; returns their bytes."""
    files = {"config.json": b"{}\n", "data.json": b"x\n", "metrics.jsonl": b"mine\n",
             "notes.txt": b"thesis\n"}
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def _contents(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.iterdir()}


def test_fit_refuses_a_folder_it_did_not_write(tmp_path: Path, train_set) -> None:
    user = tmp_path / "u"
    files = _user_folder(user)
    with pytest.raises(FileExistsError) as err:
        fit(_model(), train_set, None, _cfg(steps=1), user, progress=False)
    assert str(err.value) == (
        f"run_dir {user} holds files named like a run's records but not written by sdsen train "
        "(config.json, data.json, metrics.jsonl); choose a new or empty run_dir"
    )
    assert _contents(user) == files  # nothing written, nothing changed
    for name in ("config.json", "data.json", "metrics.jsonl"):
        (user / name).unlink()
    fit(_model(), train_set, None, _cfg(steps=1), user, progress=False)  # no clash: a new run
    assert (user / "notes.txt").read_bytes() == b"thesis\n" and is_run_dir(user)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(FileExistsError, match=r"run_dir .*file is a file; choose a new or empty"):
        fit(_model(), train_set, None, _cfg(steps=1), tmp_path / "file", progress=False)


def _folder_pairs(root: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    from sdsen.data import write_image

    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        clean = rng.random((h, w, 3), dtype=np.float32)
        write_image(root / "rain" / f"{name}.png", np.clip(clean + 0.2, 0, 1))
        write_image(root / "gt" / f"{name}.png", clean)
    return root


def test_validation_images_below_the_ssim_window_are_refused_before_training(
    tmp_path: Path, train_set
) -> None:
    from sdsen.data import PairedImageFolder

    val = PairedImageFolder(_folder_pairs(tmp_path / "val", {"a": (16, 16), "b": (12, 8)}))
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=(
        r"^validation pair 'b' \(.*rain/b\.png\) is 8x12 \(WxH\), smaller than the 11x11 window "
        r"of SSIM\. Fix: remove it from the validation data.*--val-data")):
        fit(_model(), train_set, val, _cfg(steps=1), run, progress=False)
    assert not run.exists()  # no step spent, nothing written
    tensors = [(torch.rand(3, 16, 16), torch.rand(3, 16, 16)), (torch.rand(3, 10, 16),) * 2]
    with pytest.raises(ValueError, match="validation image 1 is 16x10"):
        fit(_model(), train_set, tensors, _cfg(steps=1), run, progress=False)
    # only the images validation scores are checked
    fit(_model(), train_set, tensors, _cfg(steps=1, val_images=1), run, progress=False)
    assert read_metrics(run, "val")[-1]["images"] == 1


# --------------------------------------------------------------------------- sdsen train (CLI)
def _cli_train(run_dir: Path, *extra: str) -> int:
    from sdsen.cli import main

    args = ["train", "--preset", "quick", "--data", "synthetic", "--run-dir", str(run_dir),
            "--steps", "2", "--batch-size", "2", "--patch-size", "16", "--val-every", "0",
            "--no-progress", "--no-tensorboard", "--device", "cpu",
            "--model-config", "channels=2", "stages=2", "blocks=1"]
    return main([*args, *extra])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_cli_train_refuses_a_folder_it_did_not_write(tmp_path: Path, capsys) -> None:
    user = tmp_path / "u"
    files = _user_folder(user)
    assert _cli_train(user) == 1
    err = _one_line_error(capsys)
    assert f"--run-dir {user} holds files named like a run's records but not written" in err
    assert err.endswith("choose a new or empty --run-dir")
    assert _contents(user) == files  # no data.json, config.json or marker written over them
    (tmp_path / "photo.png").write_bytes(b"png")
    assert _cli_train(tmp_path / "photo.png") == 1
    assert f"--run-dir {tmp_path / 'photo.png'} is a file" in _one_line_error(capsys)
    (tmp_path / "empty").mkdir()  # an empty folder is a new run
    assert _cli_train(tmp_path / "empty") == 0 and is_run_dir(tmp_path / "empty")


def test_cli_resume_without_a_checkpoint_is_an_error(tmp_path: Path, capsys) -> None:
    run = tmp_path / "typo"
    assert _cli_train(run, "--resume") == 1
    assert _one_line_error(capsys).endswith(
        f"no checkpoint in {run} to resume (latest.pt is missing); drop --resume to start a new "
        "run"
    )
    assert not run.exists()


def test_cli_resume_refuses_a_folder_on_a_synthetic_run(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert _cli_train(run, "--max-minutes", "1e-9") == 0  # one step of synthetic rain
    saved = (run / "data.json").read_text()
    pairs = _folder_pairs(tmp_path / "pairs", {"a": (20, 20)})
    capsys.readouterr()
    assert _cli_train(run, "--resume", "--data", str(pairs)) == 1
    err = _one_line_error(capsys)
    assert f"--data {pairs.resolve()} differs from the run's synthetic" in err
    assert (run / "data.json").read_text() == saved
    assert load_checkpoint(run / "latest.pt")["step"] == 1


def test_config_changes_leave_out_resumes_that_were_undone(tmp_path: Path) -> None:
    from sdsen.train import config_changes

    lines = [{"event": "resume", "step": 100, "changed": {"lr": [1e-3, 5e-4]}},
             {"event": "train", "step": 110, "loss": 1.0},
             {"event": "resume", "step": 200, "changed": {"skip_spikes": [None, 10.0]}},
             {"event": "rollback", "step": 200, "from_step": 240},
             {"event": "resume", "step": 200, "changed": {"lr": [5e-4, 3e-4]}},
             {"event": "resume", "step": 300, "changed": {}}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert config_changes(tmp_path) == [(100, {"lr": [1e-3, 5e-4]}), (200, {"lr": [5e-4, 3e-4]})]


def test_validation_trend_reads_the_curve_and_its_recent_slope() -> None:
    from sdsen.train import validation_trend

    rows = [{"event": "val", "step": s, "psnr_y": [20.0] * (1 if s < 600 else 2) + [v]}
            for s, v in zip(range(100, 1100, 100),
                            [21.0, 22.0, 23.0, 23.5, 24.0, 25.0, 24.8, 25.0, 25.1, 24.9])]
    rows.append({"event": "train", "step": 1000, "loss": 1.0})
    t = validation_trend(rows)
    assert (t["step"], t["value"], t["stages"]) == (1000, 24.9, 3)
    assert (t["best_step"], t["best"], t["tail_from"]) == (900, 25.1, 800)
    # the line through (800, 25.0), (900, 25.1), (1000, 24.9): slope -0.0005 per step
    assert t["tail_change"] == pytest.approx(-0.1)
    assert validation_trend(rows[:2])["tail_change"] is None  # too few points to fit
    with pytest.raises(ValueError, match="no validation line"):
        validation_trend([{"event": "train", "step": 1}])


class _Spikes:
    """Resumable batches (each from its own seed) whose target rain layer is 100x stronger at
    the 1-based indices in ``spikes`` (every index from ``spikes[0]`` on when ``forever``)."""

    def __init__(self, spikes: tuple[int, ...], forever: bool = False) -> None:
        self.spikes, self.forever, self.i = spikes, forever, 0

    def state_dict(self) -> dict[str, int]:
        return {"i": self.i}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.i = state["i"]

    def __iter__(self):
        while True:
            self.i += 1
            g = torch.Generator().manual_seed(self.i)
            clean = torch.rand(2, 3, 16, 16, generator=g) * 0.5
            rain = torch.rand(2, 3, 16, 16, generator=g) * 0.2
            spike = self.i in self.spikes or (self.forever and self.i >= self.spikes[0])
            yield clean + rain, clean - rain * (99 if spike else 0)


def test_skip_spikes_skips_the_update_of_a_spike_step_and_resumes_exactly(tmp_path: Path) -> None:
    cfg = _cfg(steps=60, log_every=10, ckpt_every=0, skip_spikes=10.0)
    before, at = _model(), _model()
    fit(before, _Spikes((60,)), None, cfg.replace(steps=59), tmp_path / "before", progress=False)
    fit(at, _Spikes((60,)), None, cfg, tmp_path / "at", progress=False)
    assert _same_weights(before, at)  # step 60 was skipped
    rows = read_metrics(tmp_path / "at", "train")
    assert [r["skipped"] for r in rows] == [0, 0, 0, 0, 0, 1]
    assert rows[-1]["grad_norm_max"] > 10 * rows[-2]["grad_norm_max"]  # it was a spike
    unguarded = _model()
    fit(unguarded, _Spikes((60,)), None, cfg.replace(skip_spikes=None), tmp_path / "u",
        progress=False)
    assert not _same_weights(before, unguarded)
    # the window of recent norms is part of the resume state
    resumed = _model(seed=3)
    fit(_model(), _Spikes((60,)), None, cfg.replace(steps=55), tmp_path / "r", progress=False)
    fit(resumed, _Spikes((60,)), None, cfg, tmp_path / "r", progress=False)
    assert _same_weights(at, resumed)
    assert [r["skipped"] for r in read_metrics(tmp_path / "r", "train")][-1] == 1


def test_skip_spikes_stops_a_run_that_only_spikes(tmp_path: Path) -> None:
    cfg = _cfg(steps=100, log_every=10, ckpt_every=10, skip_spikes=10.0)
    with pytest.raises(TrainingDivergedError, match=r"20 steps in a row up to step 79.*step 70"):
        fit(_model(), _Spikes((60,), forever=True), None, cfg, tmp_path, progress=False)
    with pytest.raises(ValueError, match="skip_spikes must be > 1"):
        _cfg(skip_spikes=0.5)


def test_skip_spikes_learns_a_new_median_where_the_stage_count_changes(tmp_path: Path) -> None:
    # a second stage changes the loss by design: its norms must not be judged by the old median
    cfg = _cfg(steps=60, log_every=10, ckpt_every=60, skip_spikes=10.0,
               stage_schedule=[[0, 1], [55, 2]])
    fit(_model(), _Spikes(()), None, cfg, tmp_path, progress=False)
    payload = torch.load(tmp_path / "latest.pt", weights_only=False)
    assert len(payload["spike_norms"]) == 5  # steps 56..60 only


def test_resume_with_a_changed_schedule_follows_it(tmp_path: Path, train_set) -> None:
    # the checkpoint's scheduler holds the old milestones and lr: the new ones must take over
    cfg = _cfg(steps=8, milestones=[100], ckpt_every=0)
    straight = fit(_model(), train_set, None, cfg.replace(milestones=[5], lr=2e-3),
                   tmp_path / "a", progress=False)
    fit(_model(), train_set, None, cfg.replace(steps=3), tmp_path / "b", progress=False)
    resumed = fit(_model(), train_set, None, cfg.replace(milestones=[5], lr=2e-3),
                  tmp_path / "b", progress=False)
    assert resumed["lr"] == pytest.approx(straight["lr"][3:])
    assert resumed["lr"] == pytest.approx([2e-3, 2e-3, 2e-4, 2e-4, 2e-4])
