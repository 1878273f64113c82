"""Writing datasets to disk in the canonical layout: synthetic sets and converted benchmarks.

Both functions write into a temporary folder next to ``dst`` and rename it into place at the end,
so ``dst`` is either absent, untouched, or complete; never half-written. The folders and files
get the usual permissions (``0o777`` / ``0o666`` minus the umask).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdsen._version import __version__
from sdsen.data.datasets import SyntheticRainDataset
from sdsen.data.folders import PairedImageFolder
from sdsen.data.io import write_image
from sdsen.persist import apply_umask

__all__ = ["prepare", "synth_dataset"]

MANIFEST = "manifest.json"
#: What a dataset written here holds: overwriting may replace only these.
_WRITTEN = frozenset({"rain", "gt", MANIFEST})


def _check_dst(dst: Path, overwrite: bool) -> None:
    if dst.exists() and not dst.is_dir():
        raise FileExistsError(
            f"{str(dst)!r} exists and is not a folder. Fix: choose another destination."
        )
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(
            f"destination {str(dst)!r} is not empty. Fix: pass overwrite=True (CLI: --overwrite) "
            "to replace it, or choose another folder."
        )
    if dst.is_dir() and overwrite:
        foreign = sorted(p.name for p in dst.iterdir() if p.name not in _WRITTEN)
        if foreign or (any(dst.iterdir()) and not (dst / MANIFEST).is_file()):
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise FileExistsError(
                f"destination {str(dst)!r} holds what sdsen did not write"
                + (f" ({shown})" if foreign else f" (no {MANIFEST})")
                + ": overwrite replaces only a dataset written by sdsen data prepare / synth, "
                "and these would be deleted. Fix: choose another folder, or move them away."
            )


def _atomic_dir(dst: Path, overwrite: bool, fill: Callable[[Path], None]) -> Path:
    """Run ``fill(tmp)`` on a fresh temporary folder next to ``dst``, then move it to ``dst``."""
    dst = Path(dst).absolute()
    _check_dst(dst, overwrite)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        apply_umask(tmp)  # mkdtemp's 0700 would make the dataset private
        fill(tmp)
        _check_dst(dst, overwrite)  # re-check: someone may have written meanwhile
        old = None
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
            os.replace(dst, old / "d")
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    (folder / MANIFEST).write_text(text + "\n", encoding="utf-8")


def synth_dataset(
    dst: str | os.PathLike,
    n: int,
    split: str = "train",
    size: int | None = 128,
    preset: Any = "mixed",
    angle_range: tuple[float, float] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a reproducible synthetic rain dataset in the canonical layout.

    Parameters
    ----------
    dst : str or os.PathLike
        Destination folder; gets ``rain/NNNN.png``, ``gt/NNNN.png`` (8-bit PNG) and
        ``manifest.json``.
    n : int
        Number of pairs.
    split : {'train', 'val', 'test', 'all'}, default 'train'
        Which built-in photos (:func:`sdsen.data.builtin_clean_images`) to use as backgrounds.
    size : int or None, default 128
        Side of the random square crops; ``None`` uses whole photos, cycling through them.
    preset : str or RainPreset, default 'mixed'
        Rain preset (:data:`sdsen.rain.PRESETS`).
    angle_range : tuple of float or None
        ``(min, max)`` streak angle in degrees, overriding the preset's (``(a, a)`` fixes it).
    seed : int, default 0
        Same arguments and seed give byte-identical files and manifest.
    overwrite : bool, default False
        Replace a non-empty ``dst``.

    Returns
    -------
    pathlib.Path
        The absolute destination folder.

    Notes
    -----
    The manifest lists, per pair, the file names, the source photo, the crop box
    ``[top, left, height, width]`` and the rain parameters (``dataclasses.asdict`` of
    :class:`sdsen.rain.RainParams`), which regenerate the exact float sample with
    :func:`sdsen.rain.synthesize`. The PNG files are rounded to 8 bits, so ``rainy - clean`` read
    back from disk equals the synthesised ``R`` only up to that rounding.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> out = synth_dataset(pathlib.Path(tempfile.mkdtemp()) / "s", n=2, split="test", size=32)
    >>> sorted(p.name for p in (out / "rain").iterdir())
    ['0000.png', '0001.png']
    >>> json.loads((out / "manifest.json").read_text())["pairs"][0]["source"]
    'chelsea'
    """
    if n <= 0:
        raise ValueError(f"n must be a positive number of pairs, got {n}")
    ds = SyntheticRainDataset(
        split,
        patch_size=size,
        length=n,
        preset=preset,
        angle_range=angle_range,
        seed=seed,
        crops="random" if size else "full",
    )
    width = max(4, len(str(n - 1)))
    preset_desc = preset if isinstance(preset, str) else dataclasses.asdict(preset)

    def fill(tmp: Path) -> None:
        pairs = []
        for i in range(n):
            s = ds.sample(i)
            name = f"{i:0{width}d}"
            write_image(tmp / "rain" / f"{name}.png", s["rainy"])
            write_image(tmp / "gt" / f"{name}.png", s["clean"])
            pairs.append(
                {
                    "name": name,
                    "rainy": f"rain/{name}.png",
                    "clean": f"gt/{name}.png",
                    "source": s["source"],
                    "crop": list(s["crop"]),
                    "params": dataclasses.asdict(s["params"]),
                }
            )
        _write_manifest(
            tmp,
            {
                "kind": "sdsen synthetic rain",
                "sdsen_version": __version__,
                "split": split,
                "n": n,
                "size": size,
                "preset": preset_desc,
                "angle_range": list(angle_range) if angle_range is not None else None,
                "seed": seed,
                "layout": "canonical (rain/X.png pairs gt/X.png)",
                "pairs": pairs,
            },
        )

    return _atomic_dir(Path(dst), overwrite, fill)


def prepare(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    layout: str = "auto",
    order: str | None = None,
    overwrite: bool = False,
    allow_unpaired: bool = False,
) -> Path:
    """Convert a paired dataset in any supported layout to the canonical layout.

    Every pair is read (so unreadable files, size mismatches and odd-width side-by-side files
    fail before anything is moved into ``dst``) and written as ``dst/rain/NAME.png`` +
    ``dst/gt/NAME.png``. Whole-file PNG sources are copied byte for byte (16-bit kept); other
    sources are written as 8-bit PNG (a JPEG's existing compression loss is kept, none added).

    Parameters
    ----------
    src : str or os.PathLike
        Source folder (see :class:`sdsen.data.PairedImageFolder` for the layouts).
    dst : str or os.PathLike
        Destination folder.
    layout, order, allow_unpaired
        Passed to :class:`~sdsen.data.PairedImageFolder`.
    overwrite : bool, default False
        Replace a non-empty ``dst``.

    Returns
    -------
    pathlib.Path
        The absolute destination folder; it also holds ``manifest.json`` (source, layout, and
        for each pair its name and source files).

    Raises
    ------
    ValueError
        If ``dst`` is ``src``, holds ``src`` (replacing it would delete the source) or lies inside
        ``src`` (it would add files to the source dataset), whatever ``overwrite`` says.

    Warns
    -----
    UserWarning
        If the rainy and clean images of ``src`` look swapped (see
        :class:`~sdsen.data.PairedImageFolder`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> src = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(src / "1_in.png", np.full((4, 6, 3), 0.8, np.float32))
    >>> write_image(src / "1_GT.png", np.full((4, 6, 3), 0.2, np.float32))
    >>> out = prepare(src, src.parent / (src.name + "-canonical"))
    >>> PairedImageFolder(out).layout, PairedImageFolder(out).names
    ('canonical', ['1'])
    """
    src = Path(src)
    _check_apart(src, Path(dst))
    folder = PairedImageFolder(src, layout=layout, order=order, allow_unpaired=allow_unpaired)
    if len(set(folder.names)) != len(folder.names):
        raise ValueError(f"pair names in {str(src)!r} are not unique; cannot convert it")

    def fill(tmp: Path) -> None:
        (tmp / "rain").mkdir()
        (tmp / "gt").mkdir()
        entries = []
        for i, name in enumerate(folder.names):
            rsrc, csrc = folder.pairs[i]
            rainy, clean = folder.load_pair(i)  # validates readability and sizes
            for sub, source, img in (("rain", rsrc, rainy), ("gt", csrc, clean)):
                out = tmp / sub / f"{name}.png"
                if isinstance(source, Path) and source.suffix.lower() == ".png":
                    shutil.copyfile(source, out)
                else:
                    write_image(out, img)
            entries.append(
                {
                    "name": name,
                    "rainy_source": _describe(rsrc, src),
                    "clean_source": _describe(csrc, src),
                }
            )
        _write_manifest(
            tmp,
            {
                "kind": "sdsen prepared dataset",
                "sdsen_version": __version__,
                "source": str(src.absolute()),
                "layout": folder.layout,
                "order": folder.order,
                "n": len(entries),
                "pairs": entries,
            },
        )

    return _atomic_dir(Path(dst), overwrite, fill)


def _check_apart(src: Path, dst: Path) -> None:
    """Refuse a ``dst`` that is ``src``, holds it, or lies inside it (symbolic links resolved)."""
    s, d = src.resolve(), dst.resolve()
    if d == s or d in s.parents:
        problem = "is the source folder" if d == s else "holds the source folder"
        why = "replacing it would delete the source dataset and everything else in it"
    elif s in d.parents:
        problem, why = "lies inside the source folder", "it would add files to the source dataset"
    else:
        return
    raise ValueError(
        f"destination {str(dst)!r} {problem} {str(src)!r}: {why}. Fix: choose a destination "
        f"that neither holds nor lies inside the source, e.g. "
        f"{str(s.parent / (s.name + '-canonical'))!r}."
    )


def _describe(source: Path | tuple[Path, str], root: Path) -> str:
    if isinstance(source, tuple):
        return f"{source[0].relative_to(root)}#{source[1]}"
    return str(source.relative_to(root))
