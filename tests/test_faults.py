"""The fault suite: bad files and bad arrays get a correct result or one clear error, and a
training run killed at random points (SIGKILL, checkpoint writes included) loses at most one
save interval and ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sdsen.data import read_image
from sdsen.models import SDSEN, derain_image
from sdsen.train import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _encoded(fmt: str, h: int, w: int, seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


@FUZZ
@given(fmt=st.sampled_from(["PNG", "JPEG", "BMP", "TIFF"]),
       h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 10**6),
       cut=st.floats(0.0, 1.0), flip=st.integers(0, 64), how=st.sampled_from(
           ["whole", "truncated", "flipped byte", "garbage", "empty"]))
def test_image_reader_gives_an_image_or_a_clear_error(tmp_path_factory, fmt, h, w, seed, cut,
                                                      flip, how) -> None:
    data = _encoded(fmt, h, w, seed)
    if how == "truncated":
        data = data[: int(len(data) * cut)]
    elif how == "flipped byte" and data:
        k = int(cut * (len(data) - 1))
        data = data[:k] + bytes([data[k] ^ (flip + 1)]) + data[k + 1:]
    elif how == "garbage":
        data = np.random.default_rng(seed).integers(0, 256, 64, dtype=np.uint8).tobytes()
    elif how == "empty":
        data = b""
    path = tmp_path_factory.mktemp("img") / f"x.{fmt.lower()}"
    path.write_bytes(data)
    try:
        img = read_image(path)
    except (ValueError, OSError) as exc:  # the only failures allowed, naming the file
        assert str(path) in str(exc) or path.name in str(exc), str(exc)
        return
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert np.isfinite(img).all() and img.min() >= 0 and img.max() <= 1
    if how == "whole":
        assert img.shape[:2] == (h, w)


MODEL = SDSEN(channels=2, stages=2, blocks=1).eval()


@FUZZ
@given(kind=st.sampled_from(["numpy", "torch"]),
       dtype=st.sampled_from(["uint8", "float32", "float64", "int32", "float16"]),
       h=st.integers(0, 70), w=st.integers(0, 70), channels=st.sampled_from([3, 3, 3, 1, 4]),
       lo=st.sampled_from([0.0, 0.0, 0.2, -0.5, 1.2]), span=st.sampled_from([1.0, 0.5, 0.0, 255.0]),
       nan=st.sampled_from([False, False, False, True]))
def test_derain_image_gives_the_same_kind_or_a_value_error(kind, dtype, h, w, channels, lo, span,
                                                           nan) -> None:
    rng = np.random.default_rng(h * 71 + w)
    arr = lo + span * rng.random((h, w, channels))
    if span == 1.0 and lo == 0.0:
        arr = arr.clip(0, 1)
    if nan and arr.size:
        arr.flat[0] = np.nan
    if dtype == "uint8":
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    elif dtype == "int32":
        arr = np.nan_to_num(arr).astype(np.int32)
    else:
        arr = arr.astype(dtype)
    image = arr if kind == "numpy" else torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    try:
        out = derain_image(MODEL, image, tile=32, overlap=8)
    except ValueError as exc:  # one clear message (no stray torch / numpy exception types)
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert type(out) is type(image) and out.shape == image.shape and out.dtype == image.dtype
    values = np.asarray(out if kind == "numpy" else out.numpy(), dtype=np.float64)
    assert np.isfinite(values).all()
    assert values.min() >= 0 and values.max() <= (255 if dtype == "uint8" else 1)


@pytest.mark.slow
def test_training_killed_at_random_points_loses_at_most_one_save_interval(
        tmp_path: Path) -> None:
    steps, every = 150, 5  # the quick preset logs every 5 steps: each kill lands by a save
    args = [sys.executable, "-m", "sdsen", "train", "--preset", "quick", "--data", "synthetic",
            "--steps", str(steps), "--batch-size", "2", "--patch-size", "16", "--val-every", "0",
            "--ckpt-every", str(every), "--no-progress", "--no-tensorboard", "--device", "cpu",
            "--model-config", "channels=2", "stages=2", "blocks=1"]
    straight = tmp_path / "straight"
    subprocess.run([*args, "--run-dir", str(straight)], check=True, cwd=REPO,
                   capture_output=True)
    run = tmp_path / "run"
    rng = random.Random(0)
    kills = 0
    while kills < 5:
        resume = ["--resume"] if (run / "latest.pt").is_file() else []
        proc = subprocess.Popen([*args, "--run-dir", str(run), *resume], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        metrics = run / "metrics.jsonl"
        before = metrics.read_text().count('"train"') if metrics.exists() else 0
        target = before + rng.randint(1, 3)  # kill after 1-3 new log rows, whatever the speed
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and (
                not metrics.exists() or metrics.read_text().count('"train"') < target):
            time.sleep(0.005)
        if proc.poll() is not None:
            break  # finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        logged = max(r["step"] for r in rows if r["event"] == "train")
        kept = load_checkpoint(run / "latest.pt")["step"]  # never a half-written file
        assert logged - kept <= every, (logged, kept)  # at most one save interval lost
    assert kills >= 3
    subprocess.run([*args, "--run-dir", str(run), "--resume"], check=True, cwd=REPO,
                   capture_output=True)
    a, b = load_checkpoint(straight / "latest.pt"), load_checkpoint(run / "latest.pt")
    assert b["step"] == steps
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert not list(run.glob(".*.tmp"))  # no temporary file left behind by a killed write
