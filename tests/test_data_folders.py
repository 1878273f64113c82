"""sdsen.data.folders / prepare: every supported layout, built as tiny fixtures in tmp_path.

Each fixture pair is tagged by content: the clean image is a flat grey whose level encodes the
pair key, and the rainy image is the clean one plus RAIN (brighter), so a test can check that
every rainy image was paired with *its* clean image, in the right order.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from sdsen.data import (
    PairedImageFolder,
    RandomPatchDataset,
    detect_layout,
    prepare,
    read_image,
    write_image,
)

H, W = 6, 10  # non-square
RAIN = 0.3


def _clean(key: int) -> np.ndarray:
    img = np.full((H, W, 3), 0.02 * key, np.float32)
    img[0, 0] = (0.1, 0.2, 0.3)  # a pixel that shows channel order / orientation
    return img


def _rainy(key: int) -> np.ndarray:
    return np.clip(_clean(key) + RAIN, 0, 1)


def _key_of(clean: np.ndarray) -> int:
    """Pair key of an ``(H, W, 3)`` clean image."""
    return round(float(clean[1, 1, 1]) / 0.02)


def _check_pairs(ds: PairedImageFolder, expected_keys: list[int]) -> None:
    assert len(ds) == len(expected_keys) == len(ds.pairs) == len(ds.names)
    for i, key in enumerate(expected_keys):
        rainy, clean = ds[i]
        assert rainy.shape == clean.shape == (3, H, W), i
        got = round(float(clean[0, 2, 2]) / 0.02)
        assert got == key, (i, ds.names[i], got, key)
        np.testing.assert_allclose((rainy - clean)[:, 2:, 2:].numpy(), RAIN, atol=2 / 255)


def _side(key: int, order: str = "BO") -> np.ndarray:
    halves = [_clean(key), _rainy(key)]
    return np.concatenate(halves if order == "BO" else halves[::-1], axis=1)


# ---------------------------------------------------------------------------- layout builders


def make_canonical(root: Path, keys=(10, 2, 1)) -> Path:
    for k in keys:
        write_image(root / "rain" / f"{k}.png", _rainy(k))
        write_image(root / "gt" / f"{k}.png", _clean(k))
    return root


def make_rain100_flat(root: Path) -> Path:  # RainTrainH style, zero-padded names
    for k in (3, 1, 12):
        write_image(root / f"rain-{k:03d}.png", _rainy(k))
        write_image(root / f"norain-{k:03d}.png", _clean(k))
    write_image(root / "rainstreak-001.png", np.zeros((H, W, 3), np.float32))  # ignored
    return root


def make_rain100_rainy_subfolder(root: Path) -> Path:
    for k in (2, 1, 11):
        write_image(root / "rainy" / f"rain-{k:03d}.png", _rainy(k))
        write_image(root / f"norain-{k:03d}.png", _clean(k))
    return root


def make_rain100_jorder(root: Path) -> Path:  # rain/X2/norain-1x2.png + norain/norain-1.png
    for k in (1, 2, 10):
        write_image(root / "rain" / "X2" / f"norain-{k}x2.png", _rainy(k))
        write_image(root / "norain" / f"norain-{k}.png", _clean(k))
    return root


def make_ddn(root: Path) -> Path:
    for k in (2, 1):
        write_image(root / "ground_truth" / f"{k}.jpg", _clean(k))
        for j in range(1, 15):
            write_image(root / "rainy_image" / f"{k}_{j}.jpg", _rainy(k))
    return root


def make_rain12(root: Path) -> Path:
    for k in (1, 12, 2):
        write_image(root / f"{k:03d}_in.png", _rainy(k))
        write_image(root / f"{k:03d}_GT.png", _clean(k))
    return root


def make_side_by_side(root: Path, order: str = "BO") -> Path:
    for k in (10, 1, 2):
        write_image(root / f"{k}.png", _side(k, order))
    return root


LAYOUT_CASES = {
    "canonical": (make_canonical, "canonical", [1, 2, 10], ["1", "2", "10"]),
    "rain100_flat": (make_rain100_flat, "rain100", [1, 3, 12], ["1", "3", "12"]),
    "rain100_rainy": (make_rain100_rainy_subfolder, "rain100", [1, 2, 11], ["1", "2", "11"]),
    "rain100_jorder": (make_rain100_jorder, "rain100", [1, 2, 10], ["1", "2", "10"]),
    "rain12": (make_rain12, "rain12", [1, 2, 12], ["1", "2", "12"]),
    "side_by_side": (make_side_by_side, "side_by_side", [1, 2, 10], ["1", "2", "10"]),
}


@pytest.mark.parametrize("case", sorted(LAYOUT_CASES))
def test_layout_detection_pairing_and_natural_order(tmp_path, case):
    make, layout, keys, names = LAYOUT_CASES[case]
    root = make(tmp_path / case)
    assert detect_layout(root) == layout
    ds = PairedImageFolder(root)
    assert ds.layout == layout, case
    assert ds.names == names, case
    _check_pairs(ds, keys)
    same = PairedImageFolder(root, layout=layout)
    assert same.pairs == ds.pairs


def test_ddn_14_rainy_versions_share_one_clean(tmp_path):
    root = make_ddn(tmp_path / "ddn")
    ds = PairedImageFolder(root)
    assert ds.layout == "ddn" and len(ds) == 28
    assert ds.names[:3] == ["1_1", "1_2", "1_3"] and ds.names[13] == "1_14"
    assert ds.names[14] == "2_1"
    assert {c.name for _, c in ds.pairs[:14]} == {"1.jpg"}
    assert PairedImageFolder(root, layout="rain1400").pairs == ds.pairs
    rainy, clean = ds[15]
    assert abs(float(clean[0, 2, 2]) - 0.04) < 0.02  # JPEG: approximate
    assert float((rainy - clean)[:, 2:, 2:].mean()) == pytest.approx(RAIN, abs=0.03)
    assert ds.is_lossy


def test_side_by_side_halves_and_order(tmp_path):
    bo = make_side_by_side(tmp_path / "bo", "BO")
    ds = PairedImageFolder(bo)
    assert ds.order == "BO" and ds.pairs[0] == ((bo / "1.png", "right"), (bo / "1.png", "left"))
    ob = make_side_by_side(tmp_path / "ob", "OB")
    _check_pairs(PairedImageFolder(ob, layout="side_by_side", order="OB"), [1, 2, 10])
    # Rain800: the order is detected from the data (the rainy half is brighter)
    r800 = PairedImageFolder(ob, layout="rain800")
    assert r800.order == "OB"
    _check_pairs(r800, [1, 2, 10])
    assert PairedImageFolder(bo, layout="rain800").order == "BO"


def test_side_by_side_odd_width_is_rejected(tmp_path):
    write_image(tmp_path / "odd.png", np.zeros((H, 2 * W + 1, 3), np.float32))
    ds = PairedImageFolder(tmp_path)
    with pytest.raises(ValueError, match="odd.png.*odd width 21"):
        ds[0]


# ------------------------------------------------------------------------------------ errors


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        PairedImageFolder(tmp_path / "nowhere")


def test_empty_folder_never_gives_an_empty_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown layout.*tried canonical.*no files"):
        PairedImageFolder(tmp_path)
    (tmp_path / "rain").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(ValueError, match="no image pairs found"):
        PairedImageFolder(tmp_path)


def test_unknown_layout_says_what_was_tried_and_found(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError) as e:
        PairedImageFolder(tmp_path)
    msg = str(e.value)
    for word in ("canonical", "ddn", "rain12", "rain100", "side_by_side", ".txt", "sub", "Fix"):
        assert word in msg, word
    with pytest.raises(ValueError, match="unknown layout 'rain999'"):
        PairedImageFolder(make_canonical(tmp_path / "c"), layout="rain999")


def test_unpaired_files_are_listed(tmp_path):
    root = make_canonical(tmp_path)
    write_image(root / "rain" / "lonely.png", _rainy(3))
    write_image(root / "gt" / "alone.png", _clean(3))
    with pytest.raises(ValueError, match="2 unpaired") as e:
        PairedImageFolder(root)
    assert "lonely.png" in str(e.value) and "alone.png" in str(e.value)
    assert PairedImageFolder(root, allow_unpaired=True).names == ["1", "2", "10"]


def test_unpaired_rain100_and_ddn(tmp_path):
    root = make_rain100_flat(tmp_path / "r100")
    (root / "norain-012.png").unlink()
    with pytest.raises(ValueError, match="rain-012.png"):
        PairedImageFolder(root)
    ddn = make_ddn(tmp_path / "ddn")
    (ddn / "ground_truth" / "2.jpg").unlink()
    with pytest.raises(ValueError, match="14 unpaired.*2_1.jpg"):
        PairedImageFolder(ddn)


def test_pair_size_mismatch_names_both_files(tmp_path):
    root = make_canonical(tmp_path)
    write_image(root / "gt" / "2.png", np.zeros((H + 1, W, 3), np.float32), overwrite=True)
    ds = PairedImageFolder(root)
    with pytest.raises(ValueError, match="size mismatch") as e:
        ds[1]
    assert f"rain{'/'}2.png" in str(e.value).replace("\\", "/")
    assert f"gt{'/'}2.png" in str(e.value).replace("\\", "/")
    assert "10x6" in str(e.value) and "10x7" in str(e.value)


def test_corrupt_image_in_folder(tmp_path):
    root = make_canonical(tmp_path)
    (root / "rain" / "2.png").write_bytes(b"garbage")
    write_image(root / "gt" / "10.png", np.zeros((H, W + 2, 3), np.float32), overwrite=True)
    ds = PairedImageFolder(root)
    with pytest.raises(ValueError, match="2.png.*corrupt"):
        ds[1]
    with pytest.raises(ValueError, match="2 bad pair") as e:
        ds.check()
    assert "corrupt" in str(e.value) and "size mismatch" in str(e.value)


def test_random_patches_warn_on_jpeg_pairs(tmp_path):
    ddn = PairedImageFolder(make_ddn(tmp_path / "ddn"))
    with pytest.warns(UserWarning, match="JPEG"):
        RandomPatchDataset(ddn, patch_size=4)
    png = PairedImageFolder(make_canonical(tmp_path / "c"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RandomPatchDataset(png, patch_size=4)


# ----------------------------------------------------------------------------------- prepare


@pytest.mark.parametrize("case", ["rain100_jorder", "rain12", "side_by_side"])
def test_prepare_round_trip(tmp_path, case):
    make, layout, keys, names = LAYOUT_CASES[case]
    src = make(tmp_path / "src")
    out = prepare(src, tmp_path / "dst")
    ds = PairedImageFolder(out)
    assert ds.layout == "canonical" and ds.names == names
    orig = PairedImageFolder(src)
    for i in range(len(ds)):
        for a, b in zip(ds[i], orig[i], strict=True):
            assert bool((a == b).all()), (case, i)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layout"] == layout and manifest["n"] == len(keys)
    assert [p["name"] for p in manifest["pairs"]] == names


def test_prepare_ddn_writes_png(tmp_path):
    out = prepare(make_ddn(tmp_path / "src"), tmp_path / "dst", layout="ddn")
    assert len(list((out / "rain").glob("*.png"))) == 28
    assert len(list((out / "gt").glob("*.png"))) == 28
    assert not PairedImageFolder(out).is_lossy


def test_prepare_refuses_non_empty_dst_and_overwrites_when_asked(tmp_path):
    src = make_rain12(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="dst.*overwrite"):
        prepare(src, dst)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]
    prepare(src, dst, overwrite=True)
    assert sorted(p.name for p in dst.iterdir()) == ["gt", "manifest.json", "rain"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]  # no temp folders left


def test_prepare_writes_nothing_when_a_pair_is_bad(tmp_path):
    src = make_rain12(tmp_path / "src")
    (src / "012_GT.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="012_GT.png"):
        prepare(src, tmp_path / "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_cli_prepare(tmp_path, capsys):
    import argparse

    from sdsen.cli.data import add_parser

    parser = argparse.ArgumentParser(prog="sdsen")
    add_parser(parser.add_subparsers(dest="command"))
    src = make_side_by_side(tmp_path / "src", "OB")
    args = parser.parse_args(
        ["data", "prepare", str(src), str(tmp_path / "dst"), "--layout", "rain800"]
    )
    assert args.func(args) == 0
    assert "converted 3 pairs" in capsys.readouterr().out
    _check_pairs(PairedImageFolder(tmp_path / "dst"), [1, 2, 10])
    assert _key_of(read_image(tmp_path / "dst" / "gt" / "2.png")) == 2


@pytest.mark.parametrize(
    ("builder", "extra", "from_clean"),
    [
        (make_canonical, "rain/10.jpg", False),  # same stem, two extensions
        (make_canonical, "gt/2.jpg", True),
        (make_rain100_flat, "rain-3.png", False),  # rain-003 and rain-3 share the key
        (make_rain100_flat, "norain-12.png", True),
        (make_rain12, "001_in.jpg", False),
        (make_ddn, "ground_truth/1.png", True),
    ],
)
def test_two_files_claiming_one_pair_key_name_both(
    tmp_path: Path, builder, extra: str, from_clean: bool
) -> None:
    root = builder(tmp_path)
    write_image(root / extra, _clean(1) if from_clean else _rainy(1))
    with pytest.raises(ValueError, match=r"claim the same pair key") as err:
        PairedImageFolder(root)
    assert Path(extra).name in str(err.value) and "Fix: keep only one" in str(err.value)
