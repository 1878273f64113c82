"""Static HTML gallery of a results folder (rainy | derained per stage | clean).

The page uses relative links only, so it opens straight from disk (``file://``) or through
``python -m http.server`` run in any folder above it. It replaces the original ``explore.sh``.
"""

from __future__ import annotations

import csv
import html
import os
from pathlib import Path
from typing import Any

from .evaluate import INPUT_STAGE, RESULTS_CSV
from .persist import write_text_atomic

__all__ = ["read_results", "write_gallery"]

_GENERATOR = '<meta name="generator" content="sdsen show">'

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
table{border-collapse:collapse}td,th{padding:4px 8px;text-align:center;vertical-align:top}
.means td,.means th{border:1px solid #ccc}
figure{margin:0}figcaption{font-size:12px;color:#555}
img{max-width:260px;max-height:260px;image-rendering:pixelated;border:1px solid #ddd}
tr.img:nth-child(even){background:#f0f0f0}
"""


def read_results(results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of ``results.csv`` with numbers parsed (the ``MEAN`` rows included)."""
    path = Path(results_dir) / RESULTS_CSV
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {results_dir} is not a results folder "
            "(write one with: sdsen evaluate ... --save-images DIR)"
        )
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append({k: (v if k in ("image", "stage") else float(v)) for k, v in r.items()})
    return rows


def _caption(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    parts = []
    for key, unit in (("psnr_rgb", "dB RGB"), ("psnr_y", "dB Y")):
        if key in row:
            parts.append(f"{row[key]:.2f} {unit}")
    for key, lab in (("ssim_rgb", "SSIM RGB"), ("ssim_y", "SSIM Y")):
        if key in row:
            parts.append(f"{lab} {row[key]:.3f}")
    return "<br>".join(parts)


def _is_gallery(path: Path) -> bool:
    """Whether ``path`` is a page written by :func:`write_gallery` (its generator tag)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return _GENERATOR in f.read(4096)
    except OSError:
        return False


def write_gallery(
    results_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    title: str | None = None,
    stages: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an HTML page showing every image of a results folder, stage by stage.

    Parameters
    ----------
    results_dir : str or os.PathLike
        Folder written by :func:`sdsen.evaluate.evaluate` with ``save_dir``.
    out : str or os.PathLike, optional
        Output HTML file (default ``results_dir/index.html``); links are relative to it.
    title : str, optional
        Page title (default: the folder name).
    stages : list of str, optional
        Stage labels to show (default all that were saved).
    overwrite : bool
        Replace ``out`` even if it is not a page this function wrote (a page it wrote, marked
        by its ``generator`` meta tag, is always replaced).

    Returns
    -------
    pathlib.Path
        The HTML file.

    Raises
    ------
    FileExistsError
        If ``out`` exists, was not written by this function and ``overwrite`` is false.
    """
    root = Path(results_dir).resolve()
    rows = read_results(root)
    out_path = Path(out).resolve() if out is not None else root / "index.html"
    if out_path.is_dir():
        raise FileExistsError(f"gallery output {out_path} is a folder; give an .html file path")
    if out_path.exists() and not overwrite and not _is_gallery(out_path):
        raise FileExistsError(
            f"{out_path} exists and is not a gallery written by sdsen show; pass --overwrite "
            f"(overwrite=True) to replace it, or choose another --output"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    per_image = [r for r in rows if r["image"] != "MEAN"]
    means = [r for r in rows if r["image"] == "MEAN"]
    names = list(dict.fromkeys(r["image"] for r in per_image))
    saved = sorted(
        (p.name[len("stage_") :] for p in root.glob("stage_*") if p.is_dir()),
        key=lambda s: int(s) if s.isdigit() else 0,
    )
    if stages is not None:
        saved = [s for s in saved if s in stages]
    score = {(r["image"], r["stage"]): r for r in per_image}

    def img(folder: str, name: str) -> str:
        matches = sorted((root / folder).glob(f"{name}.*"))
        if not matches:
            return "<em>missing</em>"
        rel = html.escape(os.path.relpath(matches[0], out_path.parent).replace(os.sep, "/"))
        return f'<a href="{rel}"><img src="{rel}" loading="lazy" alt="{html.escape(name)}"></a>'

    title = title or root.name
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8">{_GENERATOR}',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        (
            f"<p>{len(names)} images; PSNR / SSIM on 8-bit outputs, RGB and MATLAB-Y protocols. "
            "Stage <code>input</code> scores the rainy image itself.</p>"
        ),
    ]
    if means:
        keys = [k for k in means[0] if k not in ("image", "stage")]
        parts.append('<table class="means"><tr><th>stage</th>')
        parts.extend(f"<th>{html.escape(k)}</th>" for k in keys)
        parts.append("</tr>")
        for m in means:
            parts.append(f"<tr><td>{html.escape(m['stage'])}</td>")
            parts.extend(f"<td>{m[k]:.4f}</td>" for k in keys)
            parts.append("</tr>")
        parts.append("</table><br>")
    parts.append("<table><tr><th>image</th><th>rainy</th>")
    parts.extend(f"<th>stage {html.escape(s)}</th>" for s in saved)
    parts.append("<th>clean</th></tr>")
    for name in names:
        cells = [f"<td>{html.escape(name)}</td>"]
        cells.append(
            f"<td><figure>{img('rainy', name)}<figcaption>"
            f"{_caption(score.get((name, INPUT_STAGE)))}</figcaption></figure></td>"
        )
        for s in saved:
            cells.append(
                f"<td><figure>{img('stage_' + s, name)}<figcaption>"
                f"{_caption(score.get((name, s)))}</figcaption></figure></td>"
            )
        cells.append(f"<td><figure>{img('clean', name)}</figure></td>")
        parts.append('<tr class="img">' + "".join(cells) + "</tr>")
    parts.append("</table></body></html>")
    write_text_atomic(out_path, "\n".join(parts) + "\n")
    return out_path
