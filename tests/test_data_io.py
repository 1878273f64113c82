"""sdsen.data.io and sdsen.data.builtin: image round trips, errors, built-in photo splits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sdsen.data import (
    BUILTIN_PHOTOS,
    builtin_clean_images,
    builtin_names,
    read_image,
    to_numpy,
    to_tensor,
    write_image,
)
from sdsen.data import builtin as builtin_mod

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
