"""sdsen.data.folders / prepare: every supported layout, built as tiny fixtures in tmp_path.

Each fixture pair is tagged by content: the clean image is a flat grey whose level encodes the
pair key, and the rainy image is the clean one plus RAIN (brighter), so a test can check that
every rainy image was paired with *its* clean image, in the right order.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

from sdsen.cli import main as cli_main
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
    with pytest.raises(ValueError, match="'odd.png' is 21x6 \\(WxH\\), an odd width"):
        PairedImageFolder(tmp_path)  # auto: an odd width is no side-by-side pair
    ds = PairedImageFolder(tmp_path, layout="side_by_side")  # forced: refused when read
    with pytest.raises(ValueError, match="odd.png.*odd width 21"):
        ds[0]


def _photo(seed: int, h: int = 24, w: int = 36) -> np.ndarray:
    """An ordinary photo: textured, its left and right halves show different things."""
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_flat_folder_of_photos_warns_that_it_is_cut_in_halves(tmp_path):
    src = tmp_path / "only_rainy"
    for k in (1, 2, 3):
        write_image(src / f"photo{k}.png", _photo(k))
    with pytest.warns(UserWarning) as record:
        ds = PairedImageFolder(src)
    assert ds.layout == "side_by_side" and len(ds) == 3
    msg = str(record[0].message)
    for part in ("only_rainy", "in 3 of 3 files read the two halves do not show one scene",
                 "sdsen derain", "rain/X.png + gt/X.png"):  # fmt: skip
        assert part in msg, part


def test_side_by_side_pairs_do_not_warn_at_any_aspect_ratio(tmp_path, recwarn):
    """Portrait pairs (Rain100H has 321 x 481 images) and a flat background beside its rainy
    copy are pairs: no warning."""
    root = make_side_by_side(tmp_path)  # flat halves
    scene = _photo(5, h=40, w=12)  # portrait: the pair file is 24 x 40
    rainy = np.clip(scene + 0.25 * (np.random.default_rng(6).random(scene.shape) > 0.9), 0, 1)
    write_image(root / "portrait.png", np.concatenate([scene, rainy], axis=1))
    flat = np.full((H, W, 3), 0.4, np.float32)
    streaks = flat.copy()
    streaks[:, ::3] = 0.9
    write_image(root / "flat_background.png", np.concatenate([flat, streaks], axis=1))
    assert PairedImageFolder(root).layout == "side_by_side"
    assert not [w for w in recwarn if "one scene" in str(w.message)]


def test_halves_correlation_separates_pairs_from_photos():
    from skimage import data as skdata

    from sdsen.data.folders import halves_correlation

    photo = skdata.astronaut().astype(np.float32) / 255
    half = photo.shape[1] // 2
    scene = photo[:, :half]
    streaks = np.zeros_like(scene)
    streaks[:, ::7] = 0.6  # heavy vertical streaks, every 7th column
    rainy = np.clip(scene + streaks + 0.1, 0, 1)
    assert halves_correlation(np.concatenate([scene, rainy], axis=1)) > 0.8
    assert abs(halves_correlation(photo)) < 0.5  # the two halves of one photo
    flat = np.zeros((8, 8, 3), np.float32)
    assert halves_correlation(flat) == 1.0  # two flat halves: the same (blank) scene
    flat[:, :4] = np.random.default_rng(0).random((8, 4, 3))
    assert np.isnan(halves_correlation(flat))  # flat background beside a textured half: undecided


# ------------------------------------------------------------------------------------ errors


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        PairedImageFolder(tmp_path / "nowhere")


def test_empty_folder_never_gives_an_empty_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown layout.*tried canonical.*no files"):
        PairedImageFolder(tmp_path)
    (tmp_path / "rain").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(ValueError, match=r"no image pairs found.*layout= \(CLI: --layout\)"):
        PairedImageFolder(tmp_path)


def test_hidden_files_are_ignored(tmp_path):
    canon = make_canonical(tmp_path / "canon")
    (canon / "rain" / "._1.png").write_bytes(b"AppleDouble metadata, not a PNG")
    (canon / "gt" / ".DS_Store").write_bytes(b"\0")
    assert PairedImageFolder(canon).names == ["1", "2", "10"]
    sbs = make_side_by_side(tmp_path / "sbs")
    (sbs / "._1.png").write_bytes(b"AppleDouble metadata, not a PNG")
    assert detect_layout(sbs) == "side_by_side" and PairedImageFolder(sbs).names == ["1", "2", "10"]
    r100 = make_rain100_flat(tmp_path / "r100")
    write_image(r100 / ".ipynb_checkpoints" / "rain-001-checkpoint.png", _rainy(1))
    assert PairedImageFolder(r100).names == ["1", "3", "12"]


def test_ambiguous_half_order_gives_the_cli_option(tmp_path):
    for k in (1, 2):
        write_image(tmp_path / f"{k}.png", np.full((H, 2 * W, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match="cannot tell which half") as e:
        PairedImageFolder(tmp_path, layout="rain800")
    assert "order='BO'" in str(e.value) and "--order BO" in str(e.value)


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
    assert "allow_unpaired=True (CLI: `sdsen data prepare SRC DST --allow-unpaired`" in str(e.value)
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


# ------------------------------------------------------------------------ swapped rainy/clean


def _swap(root: Path, names: list[str]) -> None:
    """Swap the rainy and clean files of the canonical pairs ``names``."""
    for n in names:
        rain, gt = root / "rain" / f"{n}.png", root / "gt" / f"{n}.png"
        rain.rename(root / "tmp.png")
        gt.rename(rain)
        (root / "tmp.png").rename(gt)


def _swap_warnings(make) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
    return [str(w.message) for w in caught if "look swapped" in str(w.message)]


def test_swapped_canonical_pairs_warn_once(tmp_path):
    root = make_canonical(tmp_path / "swapped", keys=(1, 2, 3, 4, 5))
    assert _swap_warnings(lambda: PairedImageFolder(root)) == []
    _swap(root, ["1", "2", "3", "4", "5"])
    (msg,) = _swap_warnings(lambda: PairedImageFolder(root))
    for part in ("swapped", "5 of 5 pairs", "rain/ holds the rainy images", "hazy"):
        assert part in msg, part
    with pytest.warns(UserWarning, match="look swapped"):  # a warning, never an error
        assert len(PairedImageFolder(root)) == 5


@pytest.mark.parametrize(
    ("n_swapped", "n_pairs", "warns"),
    [(3, 4, True), (2, 4, False), (3, 3, True), (1, 1, True), (1, 2, False)],
)
def test_swap_warning_needs_a_clear_majority_or_decisive_pairs(
    tmp_path, n_swapped, n_pairs, warns
):
    # from 4 pairs on, a 75 % majority of darker rainy images; below, every pair read must
    # be swapped on its own evidence (darker wherever it differs: no pixel brightened)
    root = make_canonical(tmp_path, keys=range(1, n_pairs + 1))
    _swap(root, [str(k) for k in range(1, n_swapped + 1)])
    assert len(_swap_warnings(lambda: PairedImageFolder(root))) == int(warns)


def test_too_few_pairs_to_tell_is_said(tmp_path):
    # two pairs whose rainy image is darker on average but brightens a streak: rain with haze,
    # or swapped? Two pairs cannot tell; the warning says so
    for k in (1, 2):
        clean = _clean(10 + k)
        rainy = clean - 0.1
        rainy[:, ::3] += 0.2  # bright streaks on a third of the columns
        write_image(tmp_path / "rain" / f"{k}.png", np.clip(rainy, 0, 1))
        write_image(tmp_path / "gt" / f"{k}.png", clean)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PairedImageFolder(tmp_path)
    (msg,) = [str(w.message) for w in caught]
    assert "darker than their clean partners in 2 of 2 pairs read: too few pairs" in msg
    assert "rain/ holds the rainy images" in msg


def test_swapped_side_by_side_warns_with_the_order_fix(tmp_path):
    ob = tmp_path / "ob"
    for k in (1, 2, 3, 4):
        write_image(ob / f"{k}.png", _side(k, "OB"))
    (msg,) = _swap_warnings(lambda: PairedImageFolder(ob))  # auto layout, default order BO
    assert "right half, read as rainy (order='BO')" in msg and "--order OB" in msg
    assert "--layout rain800" in msg
    assert _swap_warnings(lambda: PairedImageFolder(ob, layout="side_by_side", order="OB")) == []
    assert _swap_warnings(lambda: PairedImageFolder(ob, layout="rain800")) == []


def test_swap_check_reads_at_most_16_pairs_spread_over_the_folder(tmp_path, monkeypatch):
    root = make_canonical(tmp_path, keys=range(1, 41))
    read: list[int] = []
    original = PairedImageFolder.load_pair
    monkeypatch.setattr(
        PairedImageFolder, "load_pair", lambda self, i: read.append(i) or original(self, i)
    )
    PairedImageFolder(root)
    assert len(read) == 16 and read[0] == 0 and read[-1] == 39


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
    # overwrite replaces only what sdsen wrote: a foreign file is never deleted
    with pytest.raises(FileExistsError, match=r"holds what sdsen did not write \(keep.txt\)"):
        prepare(src, dst, overwrite=True)
    (dst / "keep.txt").unlink()
    (dst / "rain").mkdir()  # a folder named like ours, but no manifest: not ours either
    with pytest.raises(FileExistsError, match=r"\(no manifest.json\)"):
        prepare(src, dst, overwrite=True)
    (dst / "rain").rmdir()
    prepare(src, dst)
    first = (dst / "manifest.json").read_text()
    prepare(src, dst, overwrite=True)  # a dataset sdsen wrote is replaced
    assert sorted(p.name for p in dst.iterdir()) == ["gt", "manifest.json", "rain"]
    assert (dst / "manifest.json").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]  # no temp folders left


def test_a_missing_partner_folder_is_named(tmp_path):
    root = make_canonical(tmp_path / "d")
    shutil.rmtree(root / "gt")
    with pytest.raises(ValueError, match="holds rain/ but no gt/"):
        PairedImageFolder(root)


def test_prepare_refuses_a_dst_that_holds_the_source(tmp_path):
    src = make_rain12(tmp_path / "rain12")
    (tmp_path / "thesis.txt").write_text("months of work")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for dst in (tmp_path, src, tmp_path / "rain12" / ".." / "rain12"):
        with pytest.raises(ValueError, match="source folder") as e:
            prepare(src, dst, overwrite=True)
        msg = str(e.value)
        assert (
            str(dst) in msg and str(src) in msg and "Fix: choose a destination that neither" in msg
        )
    assert "delete the source dataset" in msg
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_prepare_refuses_a_dst_inside_the_source(tmp_path):
    src = make_rain12(tmp_path / "src")
    before = sorted(p.name for p in src.iterdir())
    with pytest.raises(ValueError, match="lies inside the source folder") as e:
        prepare(src, src / "canon")
    assert "src-canonical" in str(e.value)
    assert sorted(p.name for p in src.iterdir()) == before
    if hasattr(os, "symlink"):  # through a link to the source, too
        (tmp_path / "link").symlink_to(src, target_is_directory=True)
        with pytest.raises(ValueError, match="inside the source"):
            prepare(src, tmp_path / "link" / "canon")
        assert sorted(p.name for p in src.iterdir()) == before


def test_cli_prepare_refuses_dst_holding_src_in_one_line(tmp_path, capsys):
    src = make_rain12(tmp_path / "pp" / "rain12")
    assert cli_main(["data", "prepare", str(src), str(tmp_path / "pp"), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sdsen data: error: destination")
    assert len(PairedImageFolder(src)) == 3


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_prepared_dataset_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = prepare(make_ddn(tmp_path / "src"), tmp_path / "dst")  # JPEG: written, not copied
    finally:
        os.umask(old)
    for path in (out, out / "rain", out / "gt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path  # not mkdtemp's 0700
    for path in (out / "manifest.json", out / "rain" / "1_1.png", out / "gt" / "1_1.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # not mkstemp's 0600


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


def test_cli_prepare_warns_about_swapped_pairs_once_in_one_line(tmp_path, capsys):
    src = tmp_path / "rain800"
    for k in (1, 2, 3, 4):
        write_image(src / f"{k}.png", _side(k, "OB"))
    assert cli_main(["data", "prepare", str(src), str(tmp_path / "dst")]) == 0
    captured = capsys.readouterr()
    assert "converted 4 pairs" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("sdsen data: warning: the halves of the side-by-side files")
    assert str(src) in line and "4 of 4" in line and "--order OB" in line
    assert cli_main(["data", "prepare", str(src), str(tmp_path / "ok"), "--order", "OB"]) == 0
    assert capsys.readouterr().err == ""


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
