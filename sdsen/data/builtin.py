"""Built-in clean photos: the RGB natural photographs shipped inside scikit-image.

These files sit in the installed ``skimage/data/`` folder itself, so they load offline, with no
``pooch`` download and independently of ``SKIMAGE_DATADIR``. There are only five of them, so the
split is made **by image** (a background never appears in two splits):

========  ===============================  ===========  ===========================================
split     name (file)                      size (HxW)   credit / licence (from scikit-image docs)
========  ===============================  ===========  ===========================================
train     ``astronaut`` (astronaut.png)    512 x 512    Eileen Collins, NASA Great Images; public
                                                        domain (no known copyright restrictions)
train     ``coffee`` (coffee.png)          400 x 600    Rachel Michetti, courtesy of Pikolo
                                                        Espresso Bar; CC0
train     ``motorcycle`` (motorcycle_      500 x 741    Middlebury 2014 stereo benchmark, left view
          left.png)                                     (Scharstein et al., GCPR 2014), downsampled
                                                        by scikit-image; no licence stated beyond
                                                        scikit-image's BSD-3-Clause distribution;
                                                        research use, cite the authors
val       ``rocket`` (rocket.jpg)          427 x 640    DSCOVR launch on Falcon 9, SpaceX; public
                                                        domain
test      ``chelsea`` (chelsea.png)        300 x 451    Chelsea the cat, Stefan van der Walt; CC0
========  ===============================  ===========  ===========================================

Other colour files in ``skimage/data/`` are deliberately left out: ``motorcycle_right`` (same scene
as ``motorcycle``), ``hubble_deep_field`` (astronomy), ``retina`` and ``ihc`` (medical /
microscopy), ``color`` and ``logo`` (graphics), ``chessboard_RGB`` (synthetic).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from sdsen.data.io import read_image

__all__ = ["BUILTIN_PHOTOS", "SPLITS", "BuiltinPhoto", "builtin_clean_images", "builtin_names"]

#: Valid ``split`` arguments.
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")


@dataclass(frozen=True)
class BuiltinPhoto:
    """One built-in photo: scikit-image file name, split, size and credit."""

    name: str
    filename: str
    split: str
    size: tuple[int, int]  # (H, W)
    credit: str
    licence: str


#: The built-in photos, in a fixed order (the order of :func:`builtin_clean_images`).
BUILTIN_PHOTOS: tuple[BuiltinPhoto, ...] = (
    BuiltinPhoto(
        "astronaut",
        "astronaut.png",
        "train",
        (512, 512),
        "Eileen Collins, NASA Great Images database",
        "public domain",
    ),
    BuiltinPhoto(
        "coffee",
        "coffee.png",
        "train",
        (400, 600),
        "Rachel Michetti, courtesy of Pikolo Espresso Bar",
        "CC0",
    ),
    BuiltinPhoto(
        "motorcycle",
        "motorcycle_left.png",
        "train",
        (500, 741),
        "Middlebury 2014 stereo benchmark (Scharstein et al., GCPR 2014), via scikit-image",
        "no separate licence stated; distributed with scikit-image (BSD-3-Clause); research use",
    ),
    BuiltinPhoto(
        "rocket",
        "rocket.jpg",
        "val",
        (427, 640),
        "SpaceX (DSCOVR launch on Falcon 9)",
        "public domain",
    ),
    BuiltinPhoto(
        "chelsea",
        "chelsea.png",
        "test",
        (300, 451),
        "Stefan van der Walt",
        "CC0",
    ),
)


def _skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).resolve().parent / "data"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def builtin_names(split: str = "all") -> list[str]:
    """Names of the built-in photos in ``split``.

    Parameters
    ----------
    split : {'train', 'val', 'test', 'all'}
        Which split; the splits are disjoint by image.

    Returns
    -------
    list of str
        Photo names, in the order of :func:`builtin_clean_images`.

    Examples
    --------
    >>> builtin_names("test")
    ['chelsea']
    >>> sorted(set(builtin_names("train")) & set(builtin_names("val")))
    []
    """
    _check_split(split)
    return [p.name for p in BUILTIN_PHOTOS if split in ("all", p.split)]


@cache
def _load(filename: str) -> np.ndarray:
    path = _skimage_data_dir() / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"built-in photo {str(path)!r} is missing from the scikit-image install. Fix: "
            "reinstall scikit-image (pip install --force-reinstall scikit-image)."
        )
    img = read_image(path)
    img.setflags(write=False)
    return img


def builtin_clean_images(split: str = "train") -> list[np.ndarray]:
    """Load the built-in clean photos of ``split`` (offline, from scikit-image's package).

    Parameters
    ----------
    split : {'train', 'val', 'test', 'all'}
        ``train`` has 3 photos, ``val`` 1 and ``test`` 1; see the module docstring for credits.

    Returns
    -------
    list of numpy.ndarray
        Each of shape ``(H, W, 3)``, float32 RGB in ``[0, 1]`` (read-only arrays, cached; copy
        before modifying). Names: :func:`builtin_names` with the same ``split``.

    Examples
    --------
    >>> imgs = builtin_clean_images("test")
    >>> [im.shape for im in imgs]
    [(300, 451, 3)]
    """
    _check_split(split)
    return [_load(p.filename) for p in BUILTIN_PHOTOS if split in ("all", p.split)]
