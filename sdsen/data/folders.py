"""Paired rainy/clean image folders in the canonical and the standard benchmark layouts.

Supported layouts (``layout=`` names; ``'auto'`` tries them in this order):

``canonical``
    ``root/rain/X.png`` pairs ``root/gt/X.png`` (same file stem). What :func:`sdsen.data.prepare`
    and :func:`sdsen.data.synth_dataset` write; ``raincityscapes_test100`` uses it.
``ddn`` (alias ``rain1400``)
    Rain1400 / DDN (Fu et al., CVPR 2017): ``root/rainy_image/NNN_k.jpg``, k = 1..14, all sharing
    ``root/ground_truth/NNN.jpg``. Names are ``NNN_k``.
``rain12``
    Rain12 (Li et al., CVPR 2016): ``root/NNN_in.png`` pairs ``root/NNN_GT.png``.
``rain100``
    Rain100H / Rain100L / RainTrainH / RainTrainL (Yang et al., CVPR 2017): ``rain-XXX.png`` pairs
    ``norain-XXX.png`` anywhere below ``root`` (flat, or a ``rainy/`` subfolder), and the JORDER
    variant ``rain/X2/norain-XXXx2.png`` (rainy) with ``norain/norain-XXX.png`` (clean). Numeric
    keys ignore leading zeros; ``rainstreak-*`` files are ignored.
``side_by_side``
    RESCAN / SDSEN: one file per pair, ``B|O`` (clean LEFT half, rainy RIGHT half), ``order='BO'``.
    ``'auto'`` picks it for image files directly in ``root`` (all of even width). Reading such a
    folder warns when the two halves of most files read (up to 16) do not show one scene: their
    grey images, reduced to 48 x 48, correlate below 0.25 (a rainy photo and its clean
    background: 0.8 to 0.99 at full size; the two halves of an ordinary photo: about 0), the
    sign of a folder of ordinary photos being cut in two.
``rain800``
    Rain800 (ID-CGAN, Zhang et al.) side by side. The half order differs between the copies in
    circulation, so the default ``order='auto'`` decides it from the data: rain is additive, so
    the rainy half is the brighter one in most files (checked on up to 16 files; ambiguous data
    raises and asks for ``order='BO'`` or ``'OB'``). ``'auto'`` never picks ``rain800``: pass
    ``layout='rain800'`` (or ``layout='side_by_side', order='OB'``).

Hidden files and folders (names starting with '.', e.g. macOS ``._X.png``) are ignored.

Swapped rainy and clean images are a common mistake: rain adds light, so the rainy image of a
pair is normally the brighter one. Building a :class:`PairedImageFolder` reads up to 16 pairs
spread over the folder and warns (never raises: hazy rain can darken) when the rainy image is
the darker one in at least 75% of them (at least 4 pairs read).
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sdsen.data.io import LOSSY_EXTENSIONS, image_size, list_images, read_image, to_tensor

__all__ = [
    "LAYOUTS",
    "PairSource",
    "PairedImageFolder",
    "detect_layout",
    "halves_correlation",
    "natural_key",
    "read_name_list",
    "split_by_names",
]

#: Layout names accepted by :class:`PairedImageFolder`, in the order ``'auto'`` tries them.
LAYOUTS: tuple[str, ...] = ("canonical", "ddn", "rain12", "rain100", "side_by_side", "rain800")
_ALIASES = {"rain1400": "ddn", "rescan": "side_by_side", "sdsen": "side_by_side"}
#: Half order used when ``order=None``, per side-by-side layout.
_DEFAULT_ORDER = {"side_by_side": "BO", "rain800": "auto"}
#: The two halves of a side-by-side file show one scene: their grey 48 x 48 reductions
#: correlate; below this in most files read, the files look like ordinary photos (a warning).
_HALVES_LOW_CORR, _HALVES_SIDE = 0.25, 48
#: Pairs read by the swapped-pair check, and the share of them that must look swapped.
_SWAP_SAMPLE, _SWAP_SHARE, _SWAP_MIN_PAIRS = 16, 0.75, 4
#: Mean brightness difference (in [0, 1] units) below which a rainy image counts as darker.
_DARKER = 1e-3
#: A pair whose rainy image brightens under this share of the pixels where the two differ is
#: swapped on its own evidence (rain brightens its streaks; Rain800's darkest pairs: >= 9 %).
_BRIGHT_MIN = 0.02
#: Which files hold the rainy and the clean images, per layout (for the swapped-pair warning).
_ROLES = {
    "canonical": "rain/ holds the rainy images and gt/ the clean ones",
    "ddn": "rainy_image/ holds the rainy images and ground_truth/ the clean ones",
    "rain12": "the NNN_in files are the rainy images and the NNN_GT files the clean ones",
    "rain100": "the rain-XXX files are the rainy images and the norain-XXX files the clean ones",
}

#: A pair member: a whole file, or ``(file, 'left' | 'right')`` for one half of a side-by-side file.
PairSource = Path | tuple[Path, str]


def natural_key(s: str | os.PathLike) -> list:
    """Sort key that orders embedded numbers numerically (``img2`` before ``img10``).

    Examples
    --------
    >>> sorted(["b10", "b2", "a"], key=natural_key)
    ['a', 'b2', 'b10']
    """
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(s))]


def _brightened_share(rainy: np.ndarray, clean: np.ndarray, eps: float = 2 / 255) -> float:
    """Share of the pixels where ``rainy`` and ``clean`` differ (grey, by more than ``eps``) at
    which ``rainy`` is the brighter (1.0 when they do not differ)."""
    d = (rainy - clean).mean(axis=2)
    differ = np.abs(d) > eps
    return float((d[differ] > 0).mean()) if differ.any() else 1.0


def _norm_key(k: str) -> str:
    return str(int(k)) if k.isdigit() else k


def _images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files of ``folder`` (hidden ones skipped) in natural order."""
    return sorted(list_images(folder, recursive=recursive), key=natural_key)


def _sample_indices(n: int, k: int = _SWAP_SAMPLE) -> list[int]:
    """Up to ``k`` distinct indices spread evenly over ``range(n)`` (first and last included).

    Examples
    --------
    >>> _sample_indices(3), _sample_indices(100, 4)
    ([0, 1, 2], [0, 33, 66, 99])
    """
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, k)).round()}) if n else []


def _summary(root: Path) -> str:
    """One-line description of what a folder holds, for error messages."""
    if not root.is_dir():
        return "nothing (not a folder)"
    files = [p for p in root.rglob("*") if p.is_file()]
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
    exts = Counter(p.suffix.lower() or "<none>" for p in files)
    examples = [str(p.relative_to(root)) for p in sorted(files, key=natural_key)[:5]]
    return (
        f"{len(files)} files ({dict(exts)}), subfolders {subdirs}, e.g. {examples}"
        if files
        else f"no files, subfolders {subdirs}"
    )


_RAIN12 = re.compile(r"^(.+)_(in|GT)$", re.IGNORECASE)
_R100_CLEAN = re.compile(r"^norain-(.+)$", re.IGNORECASE)
_R100_RAINY = re.compile(r"^rain-(.+)$", re.IGNORECASE)
_R100_X2 = re.compile(r"^norain-(.+?)x2$", re.IGNORECASE)
_DDN_RAINY = re.compile(r"^(.+)_(\d+)$")

_PAIRED_LAYOUTS = (
    "canonical (rain/ + gt/), ddn (rainy_image/ + ground_truth/), rain12 (NNN_in / NNN_GT), "
    "rain100 (rain-XXX / norain-XXX)"
)
_TRIED = f"{_PAIRED_LAYOUTS} and side_by_side (image files directly in the folder)"


def detect_layout(root: str | os.PathLike) -> str:
    """Detect the layout of a paired folder (see the module docstring for the layouts).

    Parameters
    ----------
    root : str or os.PathLike
        Dataset folder.

    Returns
    -------
    str
        One of ``'canonical'``, ``'ddn'``, ``'rain12'``, ``'rain100'``, ``'side_by_side'``.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    ValueError
        If no layout matches, or if image files directly in ``root`` have an odd width (no
        side-by-side pair); the message lists the layouts tried, what the folder holds and the
        fix.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {str(root)!r} does not exist or is not a folder. Fix: check the path; "
            "see data/README.md for how to download and prepare the benchmarks."
        )
    if (root / "rain").is_dir() and (root / "gt").is_dir():
        return "canonical"
    if (root / "rainy_image").is_dir() and (root / "ground_truth").is_dir():
        return "ddn"
    flat = _images(root)
    if any(_RAIN12.match(p.stem) for p in flat):
        return "rain12"
    deep = _images(root, recursive=True)
    if any(_R100_CLEAN.match(p.stem) or _R100_RAINY.match(p.stem) for p in deep):
        return "rain100"
    if flat:
        odd = _odd_widths(flat)
        if odd:
            raise _odd_width_error(root, flat, odd)
        return "side_by_side"
    for have, need in (("rain", "gt"), ("gt", "rain"), ("rainy_image", "ground_truth"),
                       ("ground_truth", "rainy_image")):
        if (root / have).is_dir() and not (root / need).is_dir():
            raise ValueError(
                f"{str(root)!r} holds {have}/ but no {need}/: pairs need both (rain/X.png with "
                "gt/X.png, or rainy_image/ with ground_truth/). Fix: add the missing folder of "
                "partners, or point at the folder that holds both."
            )
    raise ValueError(
        f"unknown layout in {str(root)!r}: tried {_TRIED}, but found {_summary(root)}. Fix: "
        "point at the folder that holds the images, or convert with `sdsen data prepare`; see "
        "data/README.md."
    )


def halves_correlation(img: np.ndarray) -> float:
    """How much the left and right halves of an ``(H, W, 3)`` image look like one scene.

    The Pearson correlation of the two halves' grey images, each reduced to 48 x 48 by area
    averaging (which also blurs thin rain streaks away). Two flat halves (grey levels within
    about 1e-3 of their mean) count as 1; one flat half against a textured one gives NaN (a
    flat background beside its rainy copy is a pair, so nothing can be told).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scene = rng.random((20, 16, 3))
    >>> round(halves_correlation(np.concatenate([scene, scene + 0.2], axis=1)), 6)
    1.0
    >>> abs(halves_correlation(rng.random((20, 32, 3)))) < 0.5
    True
    """
    half = img.shape[1] // 2
    return _scene_correlation(img[:, :half], img[:, half : 2 * half])


def _scene_correlation(left: np.ndarray, right: np.ndarray) -> float:
    """:func:`halves_correlation` of two ``(H, W, 3)`` images of one size."""
    import cv2

    a, b = (
        cv2.resize(
            np.ascontiguousarray(h.mean(axis=2), dtype=np.float64),
            (_HALVES_SIDE, _HALVES_SIDE),
            interpolation=cv2.INTER_AREA,
        )
        for h in (left, right)
    )
    a, b = a - a.mean(), b - b.mean()
    # flat: grey levels vary by less than 1e-3 (a quarter of an 8-bit step) around the mean
    flat_a, flat_b = float((a * a).mean()) < 1e-6, float((b * b).mean()) < 1e-6
    if flat_a or flat_b:  # a flat background beside its rainy copy is a pair too: undecided
        return 1.0 if flat_a and flat_b else float("nan")
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _odd_widths(files: list[Path]) -> dict[Path, tuple[int, int]]:
    """The files (with their ``(width, height)``, from the headers) of odd width."""
    return {p: (w, h) for p in files for w, h in [image_size(p)] if w % 2}


def _odd_width_error(root: Path, files: list[Path], odd: dict[Path, tuple[int, int]]) -> ValueError:
    path, (w, h) = next(iter(odd.items()))
    return ValueError(
        f"cannot tell the layout of {str(root)!r}: it holds {len(files)} image file(s) directly, "
        f"but {len(odd)} of them cannot be side-by-side B|O pairs, e.g. {path.name!r} is {w}x{h} "
        f"(WxH), an odd width, and no other layout matched ({_PAIRED_LAYOUTS}). Fix: if they are "
        "pairs, crop them to an even width; otherwise put each rainy image and its clean partner "
        "in one of those layouts, e.g. rain/X.png + gt/X.png; see data/README.md."
    )


def _unpaired_error(root: Path, layout: str, unpaired: list[Path]) -> ValueError:
    shown = ", ".join(str(p.relative_to(root)) for p in unpaired[:20])
    more = f" and {len(unpaired) - 20} more" if len(unpaired) > 20 else ""
    return ValueError(
        f"{len(unpaired)} unpaired file(s) in {str(root)!r} (layout {layout!r}): {shown}{more}. "
        "Fix: add the missing partner files or remove these, or skip them with "
        "allow_unpaired=True (CLI: `sdsen data prepare SRC DST --allow-unpaired`, then use DST)."
    )


class PairedImageFolder(Dataset):
    """Rainy/clean pairs read from a folder in any supported layout.

    Parameters
    ----------
    root : str or os.PathLike
        Dataset folder.
    layout : str, default 'auto'
        ``'auto'`` or one of :data:`LAYOUTS` (aliases ``rain1400``, ``rescan``, ``sdsen``).
    order : {'BO', 'OB', 'auto'} or None
        Half order of side-by-side files (``'BO'``: clean left, rainy right). ``None`` means the
        layout default: ``'BO'`` for ``side_by_side``, ``'auto'`` for ``rain800``.
    allow_unpaired : bool, default False
        Skip files without a partner instead of raising.

    Warns
    -----
    UserWarning
        If the rainy and clean images look swapped: the rainy image is the darker one in at
        least 75% of up to 16 pairs read (at least 4). Not checked when ``order='auto'`` chose
        the side-by-side order from the same evidence.
    UserWarning
        If side-by-side files look like ordinary photos: in at least 75% of up to 16 files read,
        the two halves do not show one scene (:func:`halves_correlation` below 0.25).

    Attributes
    ----------
    layout : str
        The layout used (detected when ``layout='auto'``).
    order : str or None
        Resolved half order for side-by-side layouts, else None.
    pairs : list of tuple
        ``(rainy, clean)`` sources in natural sort order; each a :class:`~pathlib.Path` or, for
        side-by-side files, ``(path, 'left' | 'right')``.
    names : list of str
        One name per pair (file stem, ``NNN_k`` for ddn).

    Notes
    -----
    ``dataset[i]`` returns ``(rainy, clean)``, two float32 tensors of shape ``(3, H, W)`` in
    ``[0, 1]``; :meth:`load_pair` returns the ``(H, W, 3)`` numpy arrays. A folder with no pairs
    raises instead of giving an empty loader.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sdsen.data.io import write_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.png", "a.png"]:
    ...     write_image(root / "rain" / name, np.full((4, 6, 3), 0.8, np.float32))
    ...     write_image(root / "gt" / name, np.full((4, 6, 3), 0.2, np.float32))
    >>> ds = PairedImageFolder(root)
    >>> ds.layout, len(ds), ds.names
    ('canonical', 2, ['a', 'b'])
    >>> rainy, clean = ds[0]
    >>> rainy.shape
    torch.Size([3, 4, 6])
    """

    def __init__(
        self,
        root: str | os.PathLike,
        layout: str = "auto",
        order: str | None = None,
        allow_unpaired: bool = False,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"dataset folder {str(self.root)!r} does not exist or is not a folder. Fix: check "
                "the path; see data/README.md for how to download and prepare the benchmarks."
            )
        layout = _ALIASES.get(layout, layout)
        if layout == "auto":
            layout = detect_layout(self.root)
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose 'auto' or one of {LAYOUTS}")
        if order not in (None, "BO", "OB", "auto"):
            raise ValueError(f"order must be 'BO', 'OB', 'auto' or None, got {order!r}")
        self.layout = layout
        self.allow_unpaired = allow_unpaired
        self.order: str | None = None
        order = order or _DEFAULT_ORDER.get(layout)
        pairs, names = getattr(self, f"_scan_{layout}")(order)
        if not pairs:
            raise ValueError(
                f"no image pairs found in {str(self.root)!r} with layout {layout!r}; the folder "
                f"holds {_summary(self.root)}. Fix: point at the folder that holds the images "
                "(see data/README.md) or pass the right layout= (CLI: --layout)."
            )
        self.pairs: list[tuple[PairSource, PairSource]] = pairs
        self.names: list[str] = names
        self._check_sample(swaps=not (self.order and order == "auto"))

    # ------------------------------------------------------------------ scanners
    def _pair_by_key(
        self, rainy: dict[str, list[Path]], clean: dict[str, Path], many: bool = False
    ) -> tuple[list, list]:
        unpaired = [p for k, ps in rainy.items() if k not in clean for p in ps]
        unpaired += [p for k, p in clean.items() if k not in rainy]
        if unpaired and not self.allow_unpaired:
            raise _unpaired_error(self.root, self.layout, sorted(unpaired, key=natural_key))
        items = []
        for k, ps in rainy.items():
            if k in clean:
                items.extend((p, clean[k], p.stem if many else k) for p in ps)
        items.sort(key=lambda t: natural_key(t[0].relative_to(self.root)))
        return [(r, c) for r, c, _ in items], [n for _, _, n in items]

    def _dup_error(self, key: str, a: Path, b: Path) -> ValueError:
        return ValueError(
            f"two files claim the same pair key {key!r} in {str(self.root)!r}: {str(a)!r} and "
            f"{str(b)!r}. Fix: keep only one of them."
        )

    def _claim(self, table: dict, key: str, path: Path, rainy: bool) -> None:
        """Record ``path`` under ``key`` (rainy tables hold lists); a second claim is an error."""
        if key in table:
            raise self._dup_error(key, table[key][0] if rainy else table[key], path)
        table[key] = [path] if rainy else path

    def _finish(
        self, rainy: dict, clean: dict, odd: list[Path], many: bool = False
    ) -> tuple[list, list]:
        """Refuse files that fit no pair (unless allowed), then pair by key."""
        if odd and not self.allow_unpaired:
            raise _unpaired_error(self.root, self.layout, odd)
        return self._pair_by_key(rainy, clean, many=many)

    def _scan_canonical(self, order: str | None) -> tuple[list, list]:
        rain_dir, gt_dir = self.root / "rain", self.root / "gt"
        for d in (rain_dir, gt_dir):
            if not d.is_dir():
                raise FileNotFoundError(
                    f"canonical layout needs {str(d)!r} (rain/X.png pairs gt/X.png). Fix: create "
                    "it with `sdsen data prepare SRC DST` or pass the right layout= (CLI: "
                    "--layout)."
                )
        rainy: dict[str, list[Path]] = {}
        clean: dict[str, Path] = {}
        for p in _images(rain_dir):
            self._claim(rainy, p.stem, p, rainy=True)
        for p in _images(gt_dir):
            self._claim(clean, p.stem, p, rainy=False)
        return self._pair_by_key(rainy, clean)

    def _scan_ddn(self, order: str | None) -> tuple[list, list]:
        rdir, gdir = self.root / "rainy_image", self.root / "ground_truth"
        for d in (rdir, gdir):
            if not d.is_dir():
                raise FileNotFoundError(
                    f"ddn/Rain1400 layout needs {str(d)!r} (rainy_image/NNN_k.jpg sharing "
                    "ground_truth/NNN.jpg). Fix: point at the folder that holds both."
                )
        clean: dict[str, Path] = {}
        for p in _images(gdir):
            self._claim(clean, _norm_key(p.stem), p, rainy=False)
        rainy: dict[str, list[Path]] = {}
        odd: list[Path] = []
        for p in _images(rdir):
            m = _DDN_RAINY.match(p.stem)
            if m is None:
                odd.append(p)
                continue
            rainy.setdefault(_norm_key(m.group(1)), []).append(p)
        return self._finish(rainy, clean, odd, many=True)

    def _scan_rain12(self, order: str | None) -> tuple[list, list]:
        rainy: dict[str, list[Path]] = {}
        clean: dict[str, Path] = {}
        odd: list[Path] = []
        for p in _images(self.root):
            m = _RAIN12.match(p.stem)
            if m is None:
                odd.append(p)
                continue
            is_rainy = m.group(2).lower() == "in"
            self._claim(rainy if is_rainy else clean, _norm_key(m.group(1)), p, is_rainy)
        return self._finish(rainy, clean, odd)

    def _scan_rain100(self, order: str | None) -> tuple[list, list]:
        rainy: dict[str, list[Path]] = {}
        clean: dict[str, Path] = {}
        odd: list[Path] = []
        for p in _images(self.root, recursive=True):
            stem = p.stem
            if stem.lower().startswith("rainstreak"):
                continue
            m = _R100_X2.match(stem)
            in_rain_dir = any(
                part.lower() in ("rain", "rainy") for part in p.relative_to(self.root).parent.parts
            )
            if m is not None and in_rain_dir:
                k, target = _norm_key(m.group(1)), "rainy"
            elif (m := _R100_CLEAN.match(stem)) is not None:
                k, target = _norm_key(m.group(1)), "clean"
            elif (m := _R100_RAINY.match(stem)) is not None:
                k, target = _norm_key(m.group(1)), "rainy"
            else:
                odd.append(p)
                continue
            is_rainy = target == "rainy"
            self._claim(rainy if is_rainy else clean, k, p, is_rainy)
        return self._finish(rainy, clean, odd)

    def _scan_side_by_side(self, order: str) -> tuple[list, list]:
        files = _images(self.root)
        if order == "auto":
            order = _guess_order(files)
        self.order = order
        rainy_half, clean_half = _halves(order)
        pairs = [((p, rainy_half), (p, clean_half)) for p in files]
        return pairs, [p.stem for p in files]

    _scan_rain800 = _scan_side_by_side

    # ------------------------------------------------------------------ sampled checks
    def _check_sample(self, swaps: bool) -> None:
        """Read up to 16 pairs spread over the folder, once, for both warnings.

        Side-by-side files are checked for halves that do not show one scene
        (:meth:`_warn_if_not_pairs`); with ``swaps``, every layout for swapped rainy and clean
        images (:meth:`_warn_if_swapped`). Unreadable pairs are skipped: reading them raises.
        """
        diffs, corrs, decisive = [], [], []
        for i in _sample_indices(len(self)):
            try:
                rainy, clean = self.load_pair(i)
            except ValueError:
                continue  # reported when the pair is loaded
            diffs.append(float(rainy.mean(dtype=np.float64) - clean.mean(dtype=np.float64)))
            decisive.append(diffs[-1] < -_DARKER and _brightened_share(rainy, clean) < _BRIGHT_MIN)
            if self.order is not None:
                corrs.append(_scene_correlation(clean, rainy))
        if self.order is not None:
            self._warn_if_not_pairs(corrs)
        if swaps:
            self._warn_if_swapped(diffs, decisive)

    def _warn_if_not_pairs(self, corrs: list[float]) -> None:
        """Warn if side-by-side files look like ordinary photos (halves not one scene)."""
        told = [c for c in corrs if not np.isnan(c)]
        low = sum(c < _HALVES_LOW_CORR for c in told)
        if told and low >= _SWAP_SHARE * len(told):
            warnings.warn(
                f"the files in {str(self.root)!r} are read as side-by-side B|O pairs (layout "
                f"{self.layout!r}), but in {low} of {len(told)} files read the two halves do not "
                f"show one scene (grey correlation below {_HALVES_LOW_CORR}): they look like "
                "ordinary photos cut in two. Fix: for rainy photos without clean partners use "
                "`sdsen derain`; for pairs, put them in rain/X.png + gt/X.png (see data/README.md). "
                "Ignore this warning if the pairs are small crops under dense rain.",
                UserWarning,
                stacklevel=4,
            )

    def _warn_if_swapped(self, diffs: list[float], decisive: list[bool]) -> None:
        """Warn if the rainy image is the darker one (``diffs``: mean O - B) in most pairs read.

        With fewer than ``_SWAP_MIN_PAIRS`` pairs a majority proves little, so the warning needs
        every pair read to be swapped on its own evidence (``decisive``: darker, and almost no
        pixel brightened, while rain brightens its streaks); a darker majority without it gets
        a warning that too few pairs were checked to tell.
        """
        n, darker = len(diffs), sum(d < -_DARKER for d in diffs)
        if n >= _SWAP_MIN_PAIRS:
            if darker >= _SWAP_SHARE * n:
                warnings.warn(self._swapped_message(darker, n), UserWarning, stacklevel=4)
        elif n and all(decisive):
            warnings.warn(self._swapped_message(darker, n) + " (Each of these pairs is "
                          "darker nearly everywhere it differs.)", UserWarning, stacklevel=4)
        elif n and darker >= _SWAP_SHARE * n:
            warnings.warn(
                f"the rainy images in {str(self.root)!r} are darker than their clean partners in "
                f"{darker} of {n} pairs read: too few pairs to tell whether rainy and clean are "
                f"swapped. Check that {self._role()}.", UserWarning, stacklevel=4)

    def _role(self) -> str:
        """Which files (or halves) hold the rainy images, in the words of a warning."""
        if self.order is not None:
            return f"the {_halves(self.order)[0]} half of each file is the rainy image"
        return _ROLES[self.layout]

    def _swapped_message(self, darker: int, n: int) -> str:
        where = f"in {darker} of {n} pairs read, but rain adds light"
        hazy = "Ignore this warning if the rain is hazy and really darkens the images."
        if self.order is None:
            return (
                f"the rainy and clean images in {str(self.root)!r} look swapped: the rainy image "
                f"is darker than its clean partner {where}. Fix: check that "
                f"{_ROLES[self.layout]}, and swap them if not. {hazy}"
            )
        rainy_half, clean_half = _halves(self.order)
        other = "OB" if self.order == "BO" else "BO"
        return (
            f"the halves of the side-by-side files in {str(self.root)!r} look swapped: the "
            f"{rainy_half} half, read as rainy (order={self.order!r}), is darker than the "
            f"{clean_half} half {where}. Fix: if the rainy image is the {clean_half} half, pass "
            f"order={other!r} (CLI: `sdsen data prepare --order {other}`; `--layout rain800` "
            f"detects the order from the data). {hazy}"
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def files(self) -> list[Path]:
        """Every distinct file the pairs read, in pair order."""
        seen: dict[Path, None] = {}
        for pair in self.pairs:
            for src in pair:
                seen[src[0] if isinstance(src, tuple) else src] = None
        return list(seen)

    @property
    def is_lossy(self) -> bool:
        """Whether any pair is stored in a lossy format (JPEG / WebP)."""
        return any(p.suffix.lower() in LOSSY_EXTENSIONS for p in self.files)

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Read pair ``index`` as numpy arrays.

        Returns
        -------
        rainy, clean : numpy.ndarray
            Each of shape ``(H, W, 3)``, float32 in ``[0, 1]``.

        Raises
        ------
        ValueError
            If a file is unreadable, a side-by-side file has an odd width, or the two images of
            the pair differ in size (both files and sizes are named).
        """
        rsrc, csrc = self.pairs[index]
        if isinstance(rsrc, tuple):
            path = rsrc[0]
            img = read_image(path)
            w = img.shape[1]
            if w % 2:
                raise ValueError(
                    f"side-by-side file {str(path)!r} has odd width {w}, so it cannot be split "
                    "into two equal halves (clean | rainy). Fix: check it is a side-by-side pair "
                    "(or pass the right layout=); crop one column if it is."
                )
            halves = {"left": img[:, : w // 2], "right": img[:, w // 2 :]}
            return np.ascontiguousarray(halves[rsrc[1]]), np.ascontiguousarray(halves[csrc[1]])
        rainy, clean = read_image(rsrc), read_image(csrc)
        if rainy.shape != clean.shape:
            raise ValueError(
                f"pair size mismatch: rainy {str(rsrc)!r} is {rainy.shape[1]}x{rainy.shape[0]} "
                f"(WxH) but clean {str(csrc)!r} is {clean.shape[1]}x{clean.shape[0]}. Fix: "
                "re-export the pair at the same size, or remove it."
            )
        return rainy, clean

    def check(self, max_errors: int = 20) -> None:
        """Read every pair and raise one error listing all problems found (up to ``max_errors``).

        Raises
        ------
        ValueError
            Listing each unreadable file, size mismatch or odd-width side-by-side file.
        """
        problems: list[str] = []
        for i in range(len(self)):
            try:
                self.load_pair(i)
            except ValueError as e:
                problems.append(f"  - {self.names[i]}: {e}")
                if len(problems) >= max_errors:
                    problems.append("  - ... (stopped)")
                    break
        if problems:
            raise ValueError(
                f"{len(problems)} bad pair(s) in {str(self.root)!r}:\n" + "\n".join(problems)
            )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rainy, clean = self.load_pair(index)
        return to_tensor(rainy), to_tensor(clean)

    def __repr__(self) -> str:
        extra = f", order={self.order!r}" if self.order else ""
        return (
            f"PairedImageFolder({str(self.root)!r}, layout={self.layout!r}{extra}, n={len(self)})"
        )


def _halves(order: str) -> tuple[str, str]:
    """``(rainy half, clean half)`` of a side-by-side file in half order ``order``."""
    return ("right", "left") if order == "BO" else ("left", "right")


def _guess_order(files: list[Path]) -> str:
    """Decide the half order of side-by-side files: the brighter half is the rainy one."""
    if not files:
        return "BO"
    votes = Counter()
    for i in _sample_indices(len(files)):
        img = read_image(files[i])
        w = img.shape[1] // 2
        left, right = float(img[:, :w].mean()), float(img[:, w : 2 * w].mean())
        if abs(left - right) > 1e-3:
            votes["OB" if left > right else "BO"] += 1
    n = sum(votes.values())
    if n == 0 or max(votes.values()) < 0.75 * n:
        raise ValueError(
            f"cannot tell which half is rainy in the side-by-side files of "
            f"{str(files[0].parent)!r} (brighter-half votes: {dict(votes)}). Fix: look at one "
            "file and pass order='BO' (clean left) or order='OB' (rainy left) (CLI: `sdsen data "
            "prepare SRC DST --order BO` or `--order OB`, then use DST)."
        )
    return votes.most_common(1)[0][0]


def read_name_list(path: str | os.PathLike) -> list[str]:
    """Pair names listed in a text file, one per line (``15.jpg`` or ``15``; blank lines and
    ``#`` comments skipped), e.g. the fixed validation split ``val.txt`` of a dataset.

    Raises
    ------
    FileNotFoundError
        Naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"name list {str(path)!r} does not exist. Fix: pass a text file with one pair name "
            "per line (e.g. the dataset's val.txt), or leave the option out."
        )
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def split_by_names(
    folder: PairedImageFolder, names: Sequence[str]
) -> tuple[PairedImageFolder, PairedImageFolder]:
    """Split ``folder`` into the pairs not named in ``names`` and the pairs named there.

    A name matches a pair by its name (file stem) or by a file name of the pair, so both
    ``15`` and ``15.jpg`` select the pair read from ``15.jpg``.

    Returns
    -------
    rest, listed : PairedImageFolder
        Copies of ``folder`` holding the other pairs and the listed pairs, in folder order.

    Raises
    ------
    ValueError
        If a listed name matches no pair (all such names are given), or every pair is listed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sdsen.data.io import write_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["a.png", "b.png", "c.png"]:
    ...     write_image(root / "rain" / name, np.full((4, 6, 3), 0.8, np.float32))
    ...     write_image(root / "gt" / name, np.full((4, 6, 3), 0.2, np.float32))
    >>> train, val = split_by_names(PairedImageFolder(root), ["b.png"])
    >>> train.names, val.names
    (['a', 'c'], ['b'])
    """
    keys: list[set[str]] = []
    for name, pair in zip(folder.names, folder.pairs):
        files = {(src[0] if isinstance(src, tuple) else src).name for src in pair}
        keys.append({name, *files})
    wanted = list(dict.fromkeys(str(n) for n in names))
    unknown = [n for n in wanted if not any(n in k for k in keys)]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5
                                          else "")
        raise ValueError(
            f"{len(unknown)} listed name(s) match no pair of {str(folder.root)!r}: {shown}. Fix: "
            "check that the list belongs to this folder (names are file names or stems)."
        )
    chosen = [any(n in k for n in wanted) for k in keys]
    if all(chosen):
        raise ValueError(
            f"the list names every pair of {str(folder.root)!r}, leaving none to train on. Fix: "
            "list only the held-out pairs."
        )
    return _subset(folder, [not c for c in chosen]), _subset(folder, chosen)


def _subset(folder: PairedImageFolder, keep: list[bool]) -> PairedImageFolder:
    out = copy.copy(folder)
    out.pairs = [p for p, k in zip(folder.pairs, keep) if k]
    out.names = [n for n, k in zip(folder.names, keep) if k]
    return out
