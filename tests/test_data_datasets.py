"""sdsen.data.datasets and synth_dataset: shapes, determinism across workers, resume, writers."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import stat
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sdsen.data import (
    DeviceRainBatches,
    PairedImageFolder,
    RandomPatchDataset,
    SyntheticRainDataset,
    builtin_names,
    synth_dataset,
    write_image,
)
from sdsen.gconv import P4M, act_on_plane
from sdsen.rain import RainParams, synthesize_batch


def _photos() -> list[np.ndarray]:
    """Two small non-square 'photos' with distinct content everywhere (fast to synthesise on)."""
    rng = np.random.default_rng(0)
    return [rng.random((40, 56, 3), dtype=np.float32), rng.random((48, 36, 3), dtype=np.float32)]


def _all_batches(ds, workers: int, batch_size: int = 3) -> list[torch.Tensor]:
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    return [torch.cat([r, c], 1) for r, c in loader]


def _find_crop(photos: list[np.ndarray], patch: torch.Tensor) -> tuple[int, int, int]:
    """Locate an exact ``(3, p, p)`` crop in the photos; returns (photo, top, left)."""
    p = patch.shape[-1]
    target = patch.permute(1, 2, 0).numpy()
    for k, im in enumerate(photos):
        ys, xs = np.nonzero(np.isclose(im[..., 0], target[0, 0, 0], atol=0, rtol=0))
        for y, x in zip(ys, xs, strict=True):
            if np.array_equal(im[y : y + p, x : x + p], target):
                return k, int(y), int(x)
    raise AssertionError("patch not found in any photo")


# ------------------------------------------------------------------------ SyntheticRainDataset


def test_synthetic_items_shapes_range_and_crops():
    photos = _photos()
    ds = SyntheticRainDataset(photos, patch_size=16, length=6, preset="heavy", seed=3)
    assert len(ds) == 6
    for i in range(len(ds)):
        rainy, clean = ds[i]
        assert rainy.shape == clean.shape == (3, 16, 16)
        assert rainy.dtype == clean.dtype == torch.float32
        assert 0 <= float(rainy.min()) and float(rainy.max()) <= 1
        s = ds.sample(i)
        k, top, left = _find_crop(photos, clean)
        assert (k, top, left) == (int(s["source"][-1]), *s["crop"][:2]), i
        assert torch.equal(s["rainy"] - s["clean"], s["rain"])
        assert isinstance(s["params"], RainParams)
    assert any(float((ds[i][0] - ds[i][1]).abs().max()) > 0.05 for i in range(len(ds)))


def test_synthetic_same_index_same_sample_and_seed_matters():
    ds = SyntheticRainDataset(_photos(), patch_size=16, length=5, seed=0)
    again = SyntheticRainDataset(_photos(), patch_size=16, length=5, seed=0)
    other = SyntheticRainDataset(_photos(), patch_size=16, length=5, seed=1)
    for i in (4, 0, 2):  # access order does not matter
        assert torch.equal(ds[i][0], again[i][0]), i
    assert not all(torch.equal(ds[i][0], other[i][0]) for i in range(5))
    with pytest.raises(IndexError):
        ds[5]


def test_synthetic_deterministic_across_worker_counts():
    ds = SyntheticRainDataset(_photos(), patch_size=16, length=7, preset="mixed", seed=5)
    ref = _all_batches(ds, workers=0)
    got = _all_batches(ds, workers=2)
    assert len(ref) == len(got) == 3
    for a, b in zip(ref, got, strict=True):
        assert torch.equal(a, b)


def test_synthetic_angle_range_and_fixed_params_for_evaluation():
    ds = SyntheticRainDataset(_photos(), patch_size=16, length=4, angle_range=(20, 20), seed=0)
    assert all(ds.sample(i)["params"].angle == 20 for i in range(4))
    fixed = RainParams(angle=-30, length=10, density=0.01, intensity=0.5, seed=7)
    ev = SyntheticRainDataset(
        _photos(), patch_size=None, length=None, fixed_params=fixed, seed=0, crops="full"
    )
    assert len(ev) == 2
    assert ev[0][0].shape == (3, 40, 56) and ev[1][0].shape == (3, 48, 36)
    s0, s1 = ev.sample(0), ev.sample(1)
    assert dataclasses.replace(s0["params"], seed=fixed.seed) == fixed
    assert s0["params"].seed != s1["params"].seed  # a different rain draw per image
    center = SyntheticRainDataset(_photos(), patch_size=16, length=None, crops="center")
    assert center.sample(1)["crop"] == ((48 - 16) // 2, (36 - 16) // 2, 16, 16)


def test_synthetic_builtin_split_and_bad_arguments():
    ds = SyntheticRainDataset("val", patch_size=16, length=2, preset="light")
    assert ds.image_names == builtin_names("val")
    with pytest.raises(ValueError, match="empty"):
        SyntheticRainDataset([], patch_size=16)
    with pytest.raises(ValueError, match="larger than.*CLI: `sdsen train --patch-size`"):
        SyntheticRainDataset(_photos(), patch_size=64)
    with pytest.raises(ValueError, match="larger than.*`sdsen data synth --size`"):
        DeviceRainBatches(_photos(), patch_size=64)
    with pytest.raises(ValueError, match="unknown rain preset"):
        SyntheticRainDataset(_photos(), patch_size=16, preset="drizzle")[0]


# -------------------------------------------------------------------------- DeviceRainBatches


def test_device_batches_shapes_crops_and_random_access():
    photos = _photos()
    stream = DeviceRainBatches(photos, patch_size=16, batch_size=4, preset="heavy", seed=1)
    it = iter(stream)
    first = next(it)
    second = next(it)
    assert stream.step == 2
    rainy, clean, info = stream.batch(1, return_info=True)
    assert torch.equal(rainy, second[0]) and torch.equal(clean, second[1])
    assert rainy.shape == clean.shape == (4, 3, 16, 16) and rainy.dtype == torch.float32
    assert not torch.equal(first[1], second[1])
    for b in range(4):
        k, top, left = _find_crop(photos, clean[b])
        assert (k, top, left) == (int(info["image"][b]), int(info["top"][b]), int(info["left"][b]))
    assert len(info["params"]) == 4 and all(isinstance(p, RainParams) for p in info["params"])
    assert torch.equal(rainy, synthesize_batch(clean, info["params"])[0])  # its params' rain


def test_device_batches_angle_range_and_augment():
    photos = _photos()
    tilted = DeviceRainBatches(photos, patch_size=16, batch_size=8, preset="heavy", seed=1,
                               angle_range=(40, 50))  # heavy alone draws within ±4°
    assert all(40 <= p.angle <= 50 for p in tilted.batch(0, return_info=True)[2]["params"])

    stream = DeviceRainBatches(photos, patch_size=16, batch_size=8, seed=1, augment=True)
    moved = 0
    for step in range(2):
        _, clean, info = stream.batch(step, return_info=True)
        for b in range(8):
            k, top, left = (int(info[key][b]) for key in ("image", "top", "left"))
            crop = torch.from_numpy(photos[k][top:top + 16, left:left + 16].copy()).permute(2, 0, 1)
            hits = [g for g in P4M.elements if torch.equal(clean[b], act_on_plane(crop, g))]
            assert hits, "an augmented crop is a rotation / mirror of its crop"
            moved += hits[0] != (0, 0)
    assert moved > 0


def test_device_batches_resume_exactly():
    def make() -> DeviceRainBatches:
        return DeviceRainBatches(_photos(), patch_size=16, batch_size=2, seed=9)

    full = make()
    it = iter(full)
    ref = [next(it) for _ in range(4)]
    state = full.state_dict()
    assert state == {"step": 4, "seed": 9}
    ref_next = next(it)

    resumed = make()
    resumed.load_state_dict(state)
    got = next(iter(resumed))
    assert torch.equal(got[0], ref_next[0]) and torch.equal(got[1], ref_next[1])
    skipped = make()
    skipped.skip(2)
    assert torch.equal(next(iter(skipped))[0], ref[2][0])
    with pytest.raises(ValueError, match="seed"):
        DeviceRainBatches(_photos(), patch_size=16, batch_size=2, seed=1).load_state_dict(state)


def test_device_batches_prefetch_changes_nothing_but_timing():
    def make(prefetch: bool) -> DeviceRainBatches:
        return DeviceRainBatches(_photos(), patch_size=16, batch_size=3, seed=4, prefetch=prefetch)

    plain, ahead = make(False), make(True)
    it_plain, it_ahead = iter(plain), iter(ahead)
    for k in range(3):
        a, b = next(it_plain), next(it_ahead)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert ahead.step == plain.step == k + 1  # batches handed out, not the one prefetched
    assert ahead.state_dict() == {"step": 3, "seed": 4}
    ahead.skip(2)  # while iterating: the batch made ahead (step 3) is dropped, step 5 comes
    assert torch.equal(next(it_ahead)[0], plain.batch(5)[0]) and ahead.step == 6
    it_ahead.close()  # the thread is shut down with the iterator


@pytest.mark.gpu
def test_device_batches_on_cuda_stay_on_device():
    stream = DeviceRainBatches(_photos(), patch_size=16, batch_size=4, device="cuda", seed=0)
    rainy, clean = stream.batch(0)
    assert rainy.is_cuda and clean.is_cuda
    assert torch.equal(stream.batch(0)[0], rainy)
    prefetched = DeviceRainBatches(
        _photos(), patch_size=16, batch_size=4, device="cuda", seed=0, prefetch=True
    )
    it = iter(prefetched)
    for k in range(3):
        assert torch.equal(next(it)[0], stream.batch(k)[0])


# ------------------------------------------------------------------------- RandomPatchDataset


def _folder(tmp_path) -> PairedImageFolder:
    rng = np.random.default_rng(1)
    for k, (h, w) in enumerate([(20, 30), (24, 18)]):
        clean = rng.random((h, w, 3), dtype=np.float32) * 0.5
        write_image(tmp_path / "rain" / f"{k}.png", clean + 0.25)
        write_image(tmp_path / "gt" / f"{k}.png", clean)
    return PairedImageFolder(tmp_path)


def test_random_patches_deterministic_across_workers(tmp_path):
    ds = RandomPatchDataset(_folder(tmp_path), patch_size=8, length=7, seed=2)
    ref = _all_batches(ds, workers=0)
    for a, b in zip(ref, _all_batches(ds, workers=2), strict=True):
        assert torch.equal(a, b)
    assert ref[0].shape == (3, 6, 8, 8)


def test_random_patches_augment_keeps_pairs_aligned(tmp_path):
    folder = _folder(tmp_path)
    plain = RandomPatchDataset(folder, patch_size=8, length=16, seed=0)
    aug = RandomPatchDataset(folder, patch_size=8, length=16, augment=True, seed=0)
    assert len(RandomPatchDataset(folder, patch_size=8)) == 2  # default: one patch per pair
    changed = 0
    for i in range(16):
        (_, c0), (r1, c1) = plain[i], aug[i]
        np.testing.assert_allclose((r1 - c1).numpy(), 0.25, atol=1.5 / 255)
        variants = [torch.rot90(c0, k, (1, 2)) for k in range(4)]
        variants += [v.flip(-1) for v in variants]
        assert any(torch.equal(c1, v) for v in variants), i  # same crop, rotated / flipped
        changed += not torch.equal(c1, c0)
    assert changed > 0
    with pytest.raises(ValueError, match=r"smaller than patch_size=25.*--patch-size"):
        RandomPatchDataset(folder, patch_size=25, length=4, seed=0)[0]


# ----------------------------------------------------------------------------- synth_dataset


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_synth_dataset_is_reproducible_and_documented(tmp_path):
    kw = {
        "n": 3,
        "split": "test",
        "size": 32,
        "preset": "heavy",
        "angle_range": (-10, 10),
        "seed": 4,
    }
    a = synth_dataset(tmp_path / "a", **kw)
    b = synth_dataset(tmp_path / "b", **kw)
    assert _digest(a) == _digest(b)
    assert sorted(_digest(a)) == [
        "gt/0000.png", "gt/0001.png", "gt/0002.png", "manifest.json",
        "rain/0000.png", "rain/0001.png", "rain/0002.png",
    ]  # fmt: skip
    c = synth_dataset(tmp_path / "c", **{**kw, "seed": 5})
    assert _digest(a)["rain/0000.png"] != _digest(c)["rain/0000.png"]
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["seed"] == 4 and manifest["preset"] == "heavy" and manifest["n"] == 3
    for entry in manifest["pairs"]:
        params = RainParams(**entry["params"])
        assert -10 <= params.angle <= 10
        assert entry["source"] == "chelsea" and len(entry["crop"]) == 4
    ds = PairedImageFolder(a)
    assert ds.layout == "canonical" and len(ds) == 3 and ds[0][0].shape == (3, 32, 32)


@pytest.mark.parametrize("preset", ["light", "heavy", "heavy-haze"])
def test_synthetic_pairs_never_look_swapped(tmp_path, preset):
    out = synth_dataset(tmp_path / preset, n=4, split="train", size=32, preset=preset, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(PairedImageFolder(out)) == 4


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_synth_dataset_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        out = synth_dataset(tmp_path / "s", n=1, split="test", size=16)
    finally:
        os.umask(old)
    for path in (out, out / "rain"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o750, path  # not mkdtemp's 0700
    for path in (out / "manifest.json", out / "rain" / "0000.png", out / "gt" / "0000.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path  # not mkstemp's 0600


def test_synth_dataset_refuses_non_empty_dst(tmp_path):
    dst = tmp_path / "d"
    dst.mkdir()
    (dst / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        synth_dataset(dst, n=1, split="test", size=16)
    assert [p.name for p in dst.iterdir()] == ["x.txt"]
    with pytest.raises(FileExistsError, match=r"did not write \(x.txt\)"):
        synth_dataset(dst, n=1, split="test", size=16, overwrite=True)  # never deletes x.txt
    (dst / "x.txt").unlink()
    synth_dataset(dst, n=1, split="test", size=16)
    synth_dataset(dst, n=2, split="test", size=16, overwrite=True)
    assert sorted(p.name for p in dst.iterdir()) == ["gt", "manifest.json", "rain"]
    assert len(list((dst / "rain").iterdir())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temp folders left


def test_cli_synth(tmp_path, capsys):
    from sdsen.cli.data import add_parser

    parser = argparse.ArgumentParser(prog="sdsen")
    add_parser(parser.add_subparsers(dest="command"))
    dst = tmp_path / "syn"
    argv = ["data", "synth", str(dst), "--n", "2", "--split", "test", "--preset", "light"]
    args = parser.parse_args([*argv, "--size", "16", "--angle-range", "-10", "10", "--seed", "0"])
    assert args.func(args) == 0
    assert "wrote 2 pairs" in capsys.readouterr().out
    assert len(PairedImageFolder(dst)) == 2
    with pytest.raises(FileExistsError):
        args.func(args)
