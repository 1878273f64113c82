"""The ``sdsen`` command line: help, train / resume, evaluate, show, derain, clean, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.cli import main
from sdsen.data import read_image, write_image
from sdsen.train import config_changes, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model-config", "channels=2", "stages=2", "blocks=1"]


def _train(run_dir: Path, *extra: str) -> int:
    args = ["train", "--preset", "quick", "--data", "synthetic", "--run-dir", str(run_dir)]
    args += ["--steps", "2", "--batch-size", "2", "--patch-size", "16", "--val-every", "0"]
    return main([*args, "--no-progress", "--no-tensorboard", "--device", "cpu", *TINY, *extra])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "run"
    assert _train(d) == 0
    return d


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"x": (21, 27), "y": (24, 19)}.items():
        clean = rng.random((h, w, 3), dtype=np.float32)
        write_image(root / "rain" / f"{name}.png", np.clip(clean + 0.2, 0, 1))
        write_image(root / "gt" / f"{name}.png", clean)
    return root


def test_help_lists_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sdsen", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0
    for cmd in ("data", "train", "evaluate", "show", "derain", "clean"):
        assert cmd in out.stdout
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0


def test_train_resume_and_refusal(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (run_dir / "latest.pt").is_file() and (run_dir / ".sdsen-run").is_file()
    capsys.readouterr()
    assert _train(run_dir) == 1  # existing checkpoint, no --resume
    err = capsys.readouterr().err
    assert "--resume" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # resume with the saved configs (no --model-config needed) and extend to 3 steps
    assert (
        main(["train", "--run-dir", str(run_dir), "--resume", "--steps", "3", "--no-progress"]) == 0
    )
    out = capsys.readouterr().out
    assert "done: step 3" in out
    assert "resumed at step 2 with changed settings: steps 2 -> 3" in out
    # a different architecture is refused with both configs named
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(run_dir),
                "--resume",
                "--steps",
                "4",
                "--no-progress",
                "--model-config",
                "channels=3",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "channels: checkpoint=2 model=3" in err and "Traceback" not in err


def test_resume_keeps_the_runs_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert _train(run, "--rain-preset", "light", "--max-minutes", "1e-9") == 0
    assert json.loads((run / "data.json").read_text())["rain_preset"] == "light"
    capsys.readouterr()
    # another preset on resume is refused with both named; nothing is trained
    assert _train(run, "--resume", "--rain-preset", "heavy") == 1
    err = capsys.readouterr().err
    assert "--rain-preset heavy differs from the run's light" in err and "data.json" in err
    assert load_checkpoint(run / "latest.pt")["step"] == 1
    # left out, it is the run's own
    assert _train(run, "--resume") == 0
    out = capsys.readouterr().out
    assert "data synthetic rain (light)" in out and "done: step 2" in out


def test_resume_refuses_to_change_the_recipe_silently(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert _train(run, "--max-minutes", "1e-9") == 0  # the quick preset, step 1 of 2
    config = (run / "config.json").read_text()
    capsys.readouterr()
    args = ["train", "--run-dir", str(run), "--resume", "--no-progress"]
    assert main([*args, "--preset", "cpu"]) == 1  # another preset's values would replace ours
    assert "--preset cpu differs from the run's quick preset" in capsys.readouterr().err
    assert main([*args, "--lr", "0.5", "--batch-size", "3"]) == 1
    err = capsys.readouterr().err
    assert "--batch-size 2 -> 3, --lr 0.001 -> 0.5" in err and "--change-recipe" in err
    assert (run / "config.json").read_text() == config  # nothing rewritten, nothing trained
    assert load_checkpoint(run / "latest.pt")["step"] == 1
    # run fields may change; a recipe field only on purpose, and the change is recorded
    assert main([*args, "--steps", "3", "--ckpt-every", "1", "--max-minutes", "1e-9"]) == 0
    assert main([*args, "--steps", "2"]) == 1  # not above the 2 steps done
    assert "--steps 2 is not above the 2 steps the run has done" in capsys.readouterr().err
    assert main([*args, "--lr", "0.0005", "--change-recipe"]) == 0
    assert load_checkpoint(run / "latest.pt")["train_config"]["lr"] == 0.0005
    assert config_changes(run)[-1] == (2, {"lr": [0.001, 0.0005]})
    # the model: only the decoder may switch (official -> equivariant), and only on purpose
    more = [*args, "--steps", "4", "--model-config", "decoder=equivariant"]
    assert main(more) == 1
    assert "switches the decoder of the run being resumed; pass --change-recipe" in (
        capsys.readouterr().err)
    assert main([*more, "--change-recipe"]) == 0
    assert load_checkpoint(run / "latest.pt")["model_config"]["decoder"] == "equivariant"
    assert config_changes(run)[-1] == (3, {"steps": [3, 4], "decoder": ["official", "equivariant"]})


def test_resume_finds_a_moved_data_folder(pairs_dir: Path, tmp_path: Path, capsys) -> None:
    import shutil

    data = tmp_path / "pairs"
    shutil.copytree(pairs_dir, data)
    run = tmp_path / "run"
    folder = ["--data", str(data), "--val-data", "none"]
    assert _train(run, *folder, "--max-minutes", "1e-9") == 0
    other = tmp_path / "other"
    shutil.copytree(pairs_dir, other)
    capsys.readouterr()
    assert _train(run, "--resume", "--data", str(other)) == 1  # another folder: refused
    assert "differs from the run's" in capsys.readouterr().err
    moved = data.rename(tmp_path / "moved")  # the run's own folder, moved: give it again
    assert _train(run, "--resume", "--data", str(moved)) == 0
    assert json.loads((run / "data.json").read_text())["data"] == str(moved.resolve())


def test_train_in_chunks_of_minutes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a limit that is already over after the first step: one step per chunk
    assert _train(tmp_path / "run", "--max-minutes", "1e-9") == 0
    out = capsys.readouterr().out
    assert "time limit: stopped at step 1 of 2" in out and "--resume" in out
    assert "done:" not in out
    assert _train(tmp_path / "run", "--resume") == 0
    assert "done: step 2" in capsys.readouterr().out
    assert _train(tmp_path / "other", "--max-minutes", "0") == 1
    err = capsys.readouterr().err
    assert "--max-minutes must be a positive number" in err and "Traceback" not in err


def test_evaluate_show(run_dir: Path, pairs_dir: Path, tmp_path: Path, capsys) -> None:
    res = tmp_path / "res"
    csv_path = tmp_path / "scores.csv"
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(run_dir / "latest.pt"),
            str(pairs_dir),
            "--csv",
            str(csv_path),
            "--save-images",
            str(res),
            "--no-progress",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "psnr_rgb" in out and "input" in out
    assert csv_path.is_file() and (res / "results.csv").is_file()
    assert sorted(p.name for p in (res / "stage_2").iterdir()) == ["x.png", "y.png"]
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run_dir),
                str(pairs_dir),
                "--save-images",
                str(res),
                "--no-progress",
            ]
        )
        == 1
    )  # results exist
    assert "--overwrite" in capsys.readouterr().err
    page = tmp_path / "site" / "g.html"  # beside the results, not above them
    page.parent.mkdir()
    assert main(["show", str(res), "-o", str(page)]) == 0
    assert page.is_file() and "stage_2/x.png" in page.read_text()
    # served from the folder that holds both the page and the images it links to
    out = capsys.readouterr().out
    assert f"--bind 127.0.0.1 -d {tmp_path.resolve()}  (then http://localhost:8000/site/g.html)" in out
    assert main(["show", str(res), "-o", str(page)]) == 0  # its own page: replaced
    mine = tmp_path / "mine.html"
    mine.write_text("<p>my notes</p>")
    assert main(["show", str(res), "-o", str(mine)]) == 1
    assert "--overwrite" in capsys.readouterr().err and mine.read_text() == "<p>my notes</p>"
    assert main(["show", str(res), "-o", str(mine), "--overwrite"]) == 0
    assert "stage_2/x.png" in mine.read_text()


def test_evaluate_never_overwrites_a_csv(run_dir: Path, pairs_dir: Path, tmp_path: Path,
                                         capsys) -> None:
    def evaluate(*extra: str) -> int:
        return main(["evaluate", "--checkpoint", str(run_dir), str(pairs_dir), "--no-progress",
                     "--stages", "last", *extra])

    user = tmp_path / "notes.csv"
    user.write_text("my,data\n")
    assert evaluate("--csv", str(user)) == 1
    err = capsys.readouterr().err
    assert f"{user} exists; pass --overwrite" in err and user.read_text() == "my,data\n"
    assert evaluate("--csv", str(tmp_path)) == 1  # a folder: refused before scoring
    assert "is a folder" in capsys.readouterr().err
    assert evaluate("--csv", str(tmp_path / "new.csv"), "--max-images", "0") == 1
    assert "--max-images) must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "new.csv").exists()
    assert evaluate("--csv", str(user), "--overwrite", "--max-images", "1") == 0
    assert user.read_text().startswith("image,stage,") and not list(tmp_path.glob(".*.tmp"))


def test_derain_keeps_format_size_and_never_overwrites(
    run_dir: Path, tmp_path: Path, capsys
) -> None:
    rng = np.random.default_rng(1)
    src = tmp_path / "in"
    write_image(src / "a.png", rng.random((37, 53, 3), dtype=np.float32))
    write_image(src / "b.jpg", rng.random((30, 41, 3), dtype=np.float32))
    out = tmp_path / "out" / "nested"
    ck = ["--checkpoint", str(run_dir / "latest.pt"), "--tile", "24", "--overlap", "8"]
    assert main(["derain", "--engine", "eager", str(src / "a.png"), str(src / "b.jpg"), "-o", str(out), *ck]) == 0
    assert read_image(out / "a.png").shape == (37, 53, 3)
    assert read_image(out / "b.jpg").shape == (30, 41, 3)
    before = (out / "a.png").read_bytes()
    write_image(out / "a.png", np.zeros((37, 53, 3), np.float32), overwrite=True)
    marker = (out / "a.png").read_bytes()
    capsys.readouterr()
    assert main(["derain", "--engine", "eager", str(src), "-o", str(out), *ck]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == marker  # untouched
    assert main(["derain", "--engine", "eager", str(src), "-o", str(out), *ck, "--overwrite"]) == 0
    assert (out / "a.png").read_bytes() == before  # deterministic
    single = tmp_path / "single.png"
    assert main(["derain", "--engine", "eager", str(src / "a.png"), "-o", str(single), *ck]) == 0
    assert single.is_file()


def test_derain_keeps_a_grey_photo_grey(run_dir: Path, tmp_path: Path) -> None:
    import cv2

    grey = (np.random.default_rng(3).random((20, 22)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)  # a one-channel file
    assert main(["derain", "--engine", "eager", str(tmp_path / "grey.png"), "-o", str(tmp_path / "out.png"),
                 "--checkpoint", str(run_dir), "--tile", "24", "--overlap", "8"]) == 0
    out = read_image(tmp_path / "out.png")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert not np.array_equal(out[..., 0], grey / 255.0)  # derained, not copied


@pytest.mark.isolated
def test_derain_stages_and_engines(run_dir: Path, tmp_path: Path, capsys) -> None:
    from sdsen.models import available_engines

    write_image(tmp_path / "a.png", np.random.default_rng(5).random((20, 22, 3), np.float32))
    ck = ["--checkpoint", str(run_dir), "--tile", "24", "--overlap", "8", "--no-progress"]
    outs = {}
    for engine in ("eager", available_engines()[0]):
        for n in ("1", "2"):
            dst = tmp_path / f"{engine}-{n}.png"
            assert main(["derain", "--engine", "eager", str(tmp_path / "a.png"), "-o", str(dst), *ck,
                         "--stages", n, "--engine", engine]) == 0
            said = capsys.readouterr().out
            assert f"({engine} engine, " in said and " s per megapixel)" in said
            outs[engine, n] = read_image(dst)
    assert not np.array_equal(outs["eager", "1"], outs["eager", "2"])
    fast = available_engines()[0]
    assert max(np.abs(outs[fast, n] - outs["eager", n]).max() for n in "12") <= 1 / 255
    assert main(["derain", "--engine", "eager", str(tmp_path / "a.png"), "-o", str(tmp_path / "x.png"), *ck,
                 "--stages", "3"]) == 1
    assert "--stages must be in 1..2, got 3" in capsys.readouterr().err
    assert main(["derain", "--engine", "eager", str(tmp_path / "a.png"), "-o", str(tmp_path / "x.png"), *ck,
                 "--engine", "tensorrt"]) == 1
    assert "--engine tensorrt: unknown engine 'tensorrt'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_derain_keeps_16_bits(run_dir: Path, tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(4)
    deep = (rng.random((20, 22, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert main(["derain", "--engine", "eager", str(tmp_path / "deep.png"), "-o", str(tmp_path / "out.png"),
                 "--checkpoint", str(run_dir), "--tile", "24", "--overlap", "8"]) == 0
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (20, 22, 3)
    assert len(np.unique(out)) > 256  # more levels than 8 bits hold


def test_derain_batches_continue_and_refuse_ambiguous_outputs(run_dir: Path, tmp_path: Path,
                                                              capsys) -> None:
    rng = np.random.default_rng(2)
    src = tmp_path / "in"
    for name in ("a", "c"):
        write_image(src / f"{name}.png", rng.random((20, 22, 3), dtype=np.float32))
    (src / "b.png").write_bytes(b"not a png")  # corrupt, between the two
    (src / "d.png").write_bytes(b"")  # empty, after them
    (src / "._a.png").write_bytes(b"\x00\x05\x16\x07")  # macOS AppleDouble: skipped
    out = tmp_path / "out"
    ck = ["--checkpoint", str(run_dir), "--tile", "24", "--overlap", "8", "--no-progress"]
    assert main(["derain", "--engine", "eager", str(src), "-o", str(out), *ck]) == 1
    captured = capsys.readouterr()
    assert "derained 2 image(s)" in captured.out  # every readable file, past the bad ones
    err = captured.err
    assert "2 of 4 input(s) could not be read" in err and "--skip-existing" in err
    assert "b.png" in err and "d.png" in err
    assert (out / "a.png").is_file() and (out / "c.png").is_file()
    (src / "b.png").unlink()
    (src / "d.png").unlink()
    first = (out / "a.png").read_bytes()
    assert main(["derain", "--engine", "eager", str(src), "-o", str(out), *ck, "--skip-existing"]) == 0
    assert "(2 existing kept)" in capsys.readouterr().out
    assert (out / "a.png").read_bytes() == first and (out / "c.png").is_file()
    # an output folder that cannot be made is found before any work, and named
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["derain", "--engine", "eager", str(src), "-o", str(blocker / "out"), *ck]) == 1
    err = capsys.readouterr().err
    assert f"cannot write to the output folder {blocker / 'out'}" in err and "nothing" in err
    assert main(["derain", "--engine", "eager", str(src), "-o", str(tmp_path / "x.png"), *ck]) == 1
    assert "names a file, but there are 2 input images" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["derain", "--engine", "eager", str(src / "a.png"), "-o", str(tmp_path / "t"), *ck[:2], "--tile", "8"]) == 1
    assert "(CLI: --tile, --overlap)" in capsys.readouterr().err


def test_derain_without_shipped_weights(tmp_path: Path, monkeypatch, capsys) -> None:
    from sdsen import pretrained

    monkeypatch.setattr(pretrained, "list_pretrained", lambda *a, **k: [])
    write_image(tmp_path / "a.png", np.zeros((16, 16, 3), np.float32))
    assert main(["derain", "--engine", "eager", str(tmp_path / "a.png"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "no pretrained weights" in err and "--checkpoint" in err
    assert main(["derain", "--engine", "eager", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_clean(tmp_path: Path, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    assert _train(run) == 0
    (run / "step_2.pt").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")
    for bad in (tmp_path, Path("/"), Path.home(), REPO, tmp_path / "nope"):
        assert main(["clean", str(bad), "--yes"]) == 1, bad
        assert "Traceback" not in capsys.readouterr().err
    monkeypatch.chdir(run)
    assert main(["clean", ".", "--yes"]) == 1
    assert "it is the current folder" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["clean", ".", "--yes"]) == 1  # not a run folder: no "current folder" advice
    err = capsys.readouterr().err
    assert "not a run folder" in err and "current folder" not in err
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["clean", str(run)]) == 1  # no confirmation possible
    assert "--yes" in capsys.readouterr().err and (run / "latest.pt").exists()
    assert main(["clean", str(run), "--yes"]) == 0
    left = sorted(p.name for p in run.iterdir())
    assert left == [".sdsen-run", "config.json", "data.json", "notes.txt"]
    assert main(["clean", str(run), "--yes", "--all"]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # user file kept


def test_errors_are_one_line(tmp_path: Path, capsys) -> None:
    cases = [
        ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), str(tmp_path)],
        ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), str(tmp_path / "missing")],
        ["train", "--data", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "r"), *TINY],
        ["train", "--run-dir", str(tmp_path / "r2"), "--model-config", "colour=3"],
        ["show", str(tmp_path)],
    ]
    for argv in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"sdsen {argv[0]}: error:") and "Traceback" not in err, err


def test_unknown_model_config_field_lists_the_fields(tmp_path: Path, capsys) -> None:
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--model-config", "colour=3"]) == 1
    err = capsys.readouterr().err
    assert "unknown field(s) colour; ModelConfig has channels, stages" in err
    assert not (tmp_path / "r").exists()  # nothing written


def test_train_init_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from sdsen.models import ModelConfig, build_model
    from sdsen.pretrained import save_weights

    torch.manual_seed(0)
    save_weights(build_model(ModelConfig(channels=2, stages=2, blocks=1)), tmp_path / "w.pt")
    args = ["train", "--preset", "quick", "--data", "synthetic", "--steps", "1"]
    args += ["--batch-size", "2", "--patch-size", "16", "--val-every", "0", "--no-progress"]
    args += ["--no-tensorboard", "--device", "cpu"]
    # the model config comes from the weights: no --model-config needed
    assert main([*args, "--run-dir", str(tmp_path / "a"), "--init-weights", str(tmp_path / "w.pt")]) == 0
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["model"]["channels"] == 2 and saved["train"]["init_weights"].endswith("w.pt")
    capsys.readouterr()
    assert main([*args, "--run-dir", str(tmp_path / "b"), "--init-weights", "nope.pt"]) == 1
    err = capsys.readouterr().err
    assert "--init-weights" in err and "nope.pt" in err and "Traceback" not in err
    # weights of another model config: refused before the run folder is made
    bad = ["--run-dir", str(tmp_path / "c"), "--model-config", "channels=3"]
    assert main([*args, *bad, "--init-weights", str(tmp_path / "w.pt")]) == 1
    assert "channels" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_train_grad_clip_flag(tmp_path: Path) -> None:
    for flag, expected in ((None, 1.0), ("0", None), ("2.5", 2.5)):
        run = tmp_path / f"r{flag}"
        assert _train(run, *(["--grad-clip", flag] if flag else []), "--steps", "1") == 0
        saved = json.loads((run / "config.json").read_text())
        assert saved["train"]["grad_clip"] == expected, flag  # the quick preset clips at 1


@pytest.mark.slow
def test_sigterm_stops_after_the_step_with_a_checkpoint_and_resumes_exactly(
        tmp_path: Path) -> None:
    import signal
    import time

    args = [sys.executable, "-m", "sdsen", "train", "--preset", "quick", "--data", "synthetic",
            "--steps", "60", "--batch-size", "2", "--patch-size", "16", "--val-every", "0",
            "--ckpt-every", "1000", "--no-progress", "--no-tensorboard", "--device", "cpu",
            "--model-config", "channels=2", "stages=2", "blocks=1"]
    straight = tmp_path / "straight"
    subprocess.run([*args, "--run-dir", str(straight)], check=True, cwd=REPO,
                   capture_output=True)
    run = tmp_path / "run"
    proc = subprocess.Popen([*args, "--run-dir", str(run)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or
                                      metrics.read_text().count('"train"') < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out
    stopped = load_checkpoint(run / "latest.pt")["step"]
    assert 10 <= stopped < 60 and f"signal 15: stopped at step {stopped} of 60" in out
    subprocess.run([*args, "--run-dir", str(run), "--resume"], check=True, cwd=REPO,
                   capture_output=True)
    a, b = load_checkpoint(straight / "latest.pt"), load_checkpoint(run / "latest.pt")
    assert b["step"] == 60 and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
