"""sdsen.data.io and sdsen.data.builtin: image round trips, errors, built-in photo splits."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from sdsen.data import (
    BUILTIN_PHOTOS,
    builtin_clean_images,
    builtin_names,
    list_images,
    read_image,
    to_numpy,
    to_tensor,
    write_image,
)
from sdsen.data import builtin as builtin_mod
from sdsen.data.io import image_size

H, W = 5, 7  # non-square on purpose


def _rgb_u8(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_8bit_png_round_trip_is_exact(tmp_path):
    arr = _rgb_u8()
    write_image(tmp_path / "a.png", arr)
    img = read_image(tmp_path / "a.png")
    assert img.shape == (H, W, 3) and img.dtype == np.float32
    np.testing.assert_array_equal(img, arr.astype(np.float32) / 255)
    write_image(tmp_path / "b.png", img)  # float path quantises back to the same bytes
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), img)


def test_channel_order_is_rgb(tmp_path):
    red = np.zeros((H, W, 3), np.float32)
    red[..., 0] = 1.0
    write_image(tmp_path / "red.png", red)
    bgr = cv2.imread(str(tmp_path / "red.png"))
    assert bgr[0, 0].tolist() == [0, 0, 255]
    np.testing.assert_array_equal(read_image(tmp_path / "red.png"), red)


def test_16bit_png_scales_by_65535(tmp_path):
    arr = np.random.default_rng(1).integers(0, 65536, (H, W, 3), dtype=np.uint16)
    write_image(tmp_path / "d.png", arr)
    assert cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    img = read_image(tmp_path / "d.png")
    np.testing.assert_allclose(img, arr.astype(np.float64) / 65535, atol=1e-7)
    assert img.max() <= 1.0


def test_grayscale_is_promoted_to_rgb(tmp_path):
    gray = np.random.default_rng(2).integers(0, 256, (H, W), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray / np.float32(255))


def test_rgba_drops_alpha(tmp_path):
    rgb = _rgb_u8(3)
    alpha = np.zeros((H, W, 1), np.uint8)
    bgra = np.concatenate([rgb[..., ::-1], alpha], axis=2)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    img = read_image(tmp_path / "a.png")
    assert img.shape == (H, W, 3)
    np.testing.assert_array_equal(img, rgb / np.float32(255))


def test_jpeg_round_trip_is_close(tmp_path):
    img = np.full((16, 24, 3), 0.4, np.float32)
    write_image(tmp_path / "x.jpg", img)
    assert np.abs(read_image(tmp_path / "x.jpg") - img).max() < 0.02


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_corrupt_or_empty_file_names_file_and_fix(tmp_path, content):
    p = tmp_path / "broken.png"
    p.write_bytes(content)
    with pytest.raises(ValueError, match="broken.png") as e:
        read_image(p)
    assert "Fix" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="nope.png.*no such file"):
        read_image(tmp_path / "nope.png")


def test_write_refuses_overwrite_unless_asked(tmp_path):
    p = tmp_path / "o.png"
    write_image(p, np.zeros((H, W, 3), np.float32))
    with pytest.raises(FileExistsError, match="o.png.*overwrite"):
        write_image(p, np.ones((H, W, 3), np.float32))
    assert read_image(p).max() == 0  # untouched
    write_image(p, np.ones((H, W, 3), np.float32), overwrite=True)
    assert read_image(p).min() == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["o.png"]  # no temp files left


def test_write_rejects_unknown_extension_and_bad_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\.xyz"):
        write_image(tmp_path / "a.xyz", np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((3, H, W, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_write_accepts_chw_tensor(tmp_path):
    t = torch.rand(3, H, W)
    write_image(tmp_path / "t.png", t)
    np.testing.assert_allclose(read_image(tmp_path / "t.png"), to_numpy(t), atol=0.5 / 255 + 1e-6)


def test_tensor_helpers_round_trip_non_square():
    arr = np.random.default_rng(4).random((H, W, 3)).astype(np.float32)
    t = to_tensor(arr)
    assert t.shape == (3, H, W) and t.dtype == torch.float32
    assert t[1, 2, 3] == arr[2, 3, 1]
    np.testing.assert_array_equal(to_numpy(t), arr)
    with pytest.raises(ValueError):
        to_tensor(np.zeros((3, H, W)))


def _mark_top_left(h: int, w: int, block: int) -> np.ndarray:
    """A black ``(h, w, 3)`` uint8 image with a red ``block x block`` square in its top-left."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:block, :block, 0] = 255
    return arr


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_exif_orientation_is_applied(tmp_path, ext):
    # a phone photo stored landscape with Orientation 6 ("rotate 90 degrees clockwise to view")
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"phone{ext}"
    Image.fromarray(_mark_top_left(16, 24, 8)).save(path, exif=exif, quality=95)
    img = read_image(path)
    assert img.shape == (24, 16, 3)  # portrait, as viewers show it
    assert image_size(path) == (16, 24)  # (width, height), from the header alone
    assert img[:8, 8:, 0].mean() > 0.9 and img[:8, 8:, 1:].mean() < 0.1  # red now top-right
    assert img[:8, :8, 0].mean() < 0.1


def test_image_size_of_unreadable_file_names_it(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png.*corrupt"):
        image_size(tmp_path / "bad.png")


def test_list_images_skips_hidden_files_and_folders(tmp_path):
    for name in ["b.png", "a.JPG", "._a.JPG", ".DS_Store", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    for sub in ["sub", ".ipynb_checkpoints"]:
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "c.png").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
    deep = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert deep == ["a.JPG", "b.png", "sub/c.png"]


@pytest.fixture(params=[0o022, 0o007], ids=["umask022", "umask007"])
def umask(request) -> Iterator[int]:
    """Run a test under a given process umask, restoring the previous one afterwards."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_written_images_get_the_umask_permissions(tmp_path, umask):
    path = tmp_path / "out" / "a.png"
    write_image(path, np.zeros((H, W, 3), np.float32))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    write_image(path, np.ones((H, W, 3), np.float32), overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ----------------------------------------------------------------------------- built-in photos


def test_builtin_splits_are_disjoint_and_cover_all():
    train, val, test = (set(builtin_names(s)) for s in ("train", "val", "test"))
    assert train and val and test
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(builtin_names("all"))
    assert builtin_names("all") == [p.name for p in BUILTIN_PHOTOS]
    with pytest.raises(ValueError, match="split"):
        builtin_names("training")


def test_builtin_images_load_offline_as_rgb(monkeypatch, tmp_path):
    monkeypatch.setenv("SKIMAGE_DATADIR", str(tmp_path / "does-not-exist"))
    builtin_mod._load.cache_clear()
    for split in ("train", "val", "test"):
        imgs = builtin_clean_images(split)
        assert len(imgs) == len(builtin_names(split))
        for im, name in zip(imgs, builtin_names(split), strict=True):
            photo = next(p for p in BUILTIN_PHOTOS if p.name == name)
            assert im.shape == (*photo.size, 3), name
            assert im.dtype == np.float32 and 0 <= im.min() and im.max() <= 1
            assert im.std() > 0.05, name  # a real photo, not a flat image
            assert not np.allclose(im[..., 0], im[..., 1]), name  # colour, not grey
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or cached


def test_builtin_credits_are_documented():
    for p in BUILTIN_PHOTOS:
        assert p.credit and p.licence, p.name
        assert p.name in builtin_mod.__doc__, p.name
