"""Image I/O: float32 RGB in [0, 1], atomic writes, numpy <-> torch layout helpers.

Every image in `sdsen` is an array of shape ``(H, W, 3)`` (numpy, channels last) or a tensor of
shape ``(3, H, W)`` (torch, channels first), float32 RGB with values in ``[0, 1]``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from sdsen.persist import apply_umask

__all__ = [
    "IMAGE_EXTENSIONS",
    "LOSSY_EXTENSIONS",
    "image_size",
    "is_image_file",
    "list_images",
    "read_image",
    "read_image_with_bits",
    "to_numpy",
    "to_tensor",
    "write_image",
]

#: File extensions (lower case, with the dot) that :func:`read_image` accepts.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Lossy formats: recompressing a training pair changes the rain layer ``R = O - B``.
LOSSY_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".webp")
#: EXIF tag number of the Orientation field.
_EXIF_ORIENTATION = 0x0112


def is_image_file(path: str | os.PathLike) -> bool:
    """Return whether ``path`` has an image extension listed in :data:`IMAGE_EXTENSIONS`.

    Examples
    --------
    >>> is_image_file("rain/001.PNG"), is_image_file("notes.txt")
    (True, False)
    """
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files in ``folder``, skipping hidden files and folders (names starting with '.').

    Hidden entries are metadata, not images: macOS AppleDouble files (``._photo.png``),
    ``.DS_Store``, ``.ipynb_checkpoints/`` and the temporary files of :func:`write_image`.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to list.
    recursive : bool, default False
        Also list the files in its subfolders (except hidden subfolders).

    Returns
    -------
    list of pathlib.Path
        Files with an image extension (:func:`is_image_file`), sorted by path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.png", "a.jpg", "._a.jpg", "notes.txt"]:
    ...     _ = (d / name).write_bytes(b"")
    >>> [p.name for p in list_images(d)]
    ['a.jpg', 'b.png']
    """
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file()
        and is_image_file(p)
        and not any(_is_hidden(Path(part)) for part in p.relative_to(folder).parts)
    )


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Width and height of an image file as :func:`read_image` returns it, read from the header.

    Only the file header is parsed (Pillow), so this is fast even for large images; an EXIF
    orientation that turns the image by 90 degrees swaps the two. Files Pillow cannot parse are
    decoded with :func:`read_image`, which raises its clear error for an unreadable file.

    Parameters
    ----------
    path : str or os.PathLike
        Image file.

    Returns
    -------
    tuple of int
        ``(width, height)`` in pixels.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.png"
    >>> write_image(p, np.zeros((4, 6, 3), np.float32))
    >>> image_size(p)
    (6, 4)
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError):  # not parsable by Pillow: let read_image decide
        height, width = read_image(path).shape[:2]
        return width, height
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _decode(path: str | os.PathLike) -> np.ndarray:
    """The image as OpenCV decodes it: upright (EXIF applied), BGR or grey, its own bit depth."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"cannot read image {str(path)!r}: no such file. Fix: check the path (and that the "
            "dataset was downloaded / prepared into this folder)."
        )
    data = np.fromfile(str(path), dtype=np.uint8)  # also works for non-ASCII paths
    # not IMREAD_UNCHANGED: every other flag applies the EXIF orientation; these two keep the
    # bit depth and the grey / colour channels (alpha is dropped, as documented)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise ValueError(
            f"cannot read image {str(path)!r}: the file is empty, corrupt or not a supported "
            f"image format ({', '.join(IMAGE_EXTENSIONS)}). Fix: re-download or re-export this "
            "file, or remove it from the folder."
        )
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 RGB in ``[0, 1]``, upright.

    What happens to inputs that are not 8-bit RGB:

    - 16-bit images are divided by 65535 (8-bit ones by 255); float32 keeps all their precision,
      but :func:`write_image` writes 8 bits unless given a ``uint16`` array, so a 16-bit input
      comes back as 8-bit unless the caller converts.
    - Grayscale is promoted to RGB (the value copied to the three channels). A model may change
      the three channels differently, so a derained grey photo written back is a slightly tinted
      RGB image; average the channels (or convert to luma) to get grey back.
    - An alpha channel is dropped without compositing: colours stored under fully transparent
      pixels become visible, and the output has no transparency.
    - The EXIF Orientation tag (phone photos) is applied, so the pixels come out the way viewers
      show the file; :func:`write_image` writes no EXIF, so the output is upright as stored.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (PNG, JPEG, BMP, TIFF, WebP).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(H, W, 3)``, dtype float32, RGB channel order, values in ``[0, 1]``.

    Raises
    ------
    ValueError
        If the file is missing, empty, corrupt or of an unsupported format; the message names
        the file and the fix.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.png"
    >>> write_image(p, np.full((4, 6, 3), 0.5, np.float32))
    >>> img = read_image(p)
    >>> img.shape, img.dtype, round(float(img.max()), 3)
    ((4, 6, 3), dtype('float32'), 0.502)
    """
    return read_image_with_bits(path)[0]


def read_image_with_bits(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """:func:`read_image`, and the bits per sample the file stores, from one decode.

    For writing a result at the input's depth (8, 16, or 32 for float images).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.png"
    >>> write_image(p, np.zeros((4, 6, 3), np.uint16))
    >>> img, bits = read_image_with_bits(p)
    >>> img.shape, bits
    ((4, 6, 3), 16)
    """
    img = _decode(path)
    bits = img.dtype.itemsize * 8
    if img.dtype == np.uint8:
        scale = 255.0
    elif img.dtype == np.uint16:
        scale = 65535.0
    elif img.dtype in (np.float32, np.float64):
        scale = 1.0
    else:
        raise ValueError(
            f"cannot read image {str(path)!r}: unsupported sample type {img.dtype}. Fix: save it "
            "as an 8-bit or 16-bit PNG."
        )
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise ValueError(
            f"cannot read image {str(path)!r}: {img.shape[2]} channels. Fix: save it as RGB."
        )
    out = img.astype(np.float32) / np.float32(scale)
    return np.clip(out, 0.0, 1.0, out=out), bits


def write_image(
    path: str | os.PathLike, img: np.ndarray | torch.Tensor, overwrite: bool = False
) -> None:
    """Write an RGB image atomically, in the format given by the extension.

    Values are clipped to ``[0, 1]`` and rounded to 8 bits (or 16 bits when ``img`` is a numpy
    ``uint16`` array and the format is PNG or TIFF). The file is written to a temporary file in
    the same folder and then renamed with :func:`os.replace`, so a reader never sees a
    half-written image; it gets the usual permissions (``0o666`` minus the umask). No alpha
    channel and no EXIF data are written (see :func:`read_image` for what reading drops).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; the extension (``.png``, ``.jpg``, ...) selects the format. Parent folders
        are created.
    img : numpy.ndarray or torch.Tensor
        ``(H, W, 3)`` array or ``(3, H, W)`` tensor, float in ``[0, 1]`` (or ``uint8`` /
        ``uint16`` array); ``(H, W)`` grayscale is accepted.
    overwrite : bool, default False
        Replace an existing file. Without it an existing file raises :class:`FileExistsError`.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the extension is not a supported image format or the array has the wrong shape.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
    >>> write_image(p, np.zeros((2, 3, 3), np.float32))
    >>> write_image(p, np.zeros((2, 3, 3), np.float32))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FileExistsError: ...
    >>> write_image(p, np.ones((2, 3, 3), np.float32), overwrite=True)
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(
            f"cannot write {str(path)!r}: unknown image extension {ext!r}. Fix: use one of "
            f"{', '.join(IMAGE_EXTENSIONS)} (PNG is lossless)."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} already exists. Fix: pass overwrite=True (CLI: --overwrite) or choose "
            "another path."
        )
    if isinstance(img, torch.Tensor):
        img = to_numpy(img)
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(
            f"cannot write {str(path)!r}: expected an (H, W, 3) or (H, W) image, got shape "
            f"{arr.shape}. Fix: use to_numpy() on a (3, H, W) tensor."
        )
    if arr.dtype == np.uint16 and ext in (".png", ".tif", ".tiff") or arr.dtype == np.uint8:
        out = arr
    else:
        out = np.rint(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    if out.ndim == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    ok, buf = cv2.imencode(ext, out, params)
    if not ok:
        raise ValueError(f"cannot encode {str(path)!r} as {ext}. Fix: save as .png instead.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=ext + ".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.tobytes())
        apply_umask(tmp)
        if not overwrite and path.exists():  # lost a race with another writer
            raise FileExistsError(
                f"{str(path)!r} already exists. Fix: pass overwrite=True (CLI: --overwrite)."
            )
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """Convert an ``(H, W, 3)`` float image to a contiguous float32 tensor ``(3, H, W)``.

    Examples
    --------
    >>> to_tensor(np.zeros((4, 5, 3), np.float32)).shape
    torch.Size([3, 4, 5])
    """
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"to_tensor expects an (H, W, 3) array, got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def to_numpy(img: torch.Tensor) -> np.ndarray:
    """Convert a ``(3, H, W)`` tensor (any device) to a float32 ``(H, W, 3)`` numpy array.

    Examples
    --------
    >>> to_numpy(torch.zeros(3, 4, 5)).shape
    (4, 5, 3)
    """
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"to_numpy expects a (3, H, W) tensor, got shape {tuple(img.shape)}")
    return np.ascontiguousarray(img.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy())
