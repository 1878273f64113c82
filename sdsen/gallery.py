"""Static HTML gallery of a results folder (rainy | derained per stage | clean).

The page uses relative links only, so it opens straight from disk (``file://``) or through
``python -m http.server`` run in any folder above it. It replaces the original ``explore.sh``.
A click on a thumbnail opens that image at full size in a viewer whose buttons (or the left /
right keys) switch between the rainy image, each stage and the clean one at the same spot;
Escape closes it.
"""

from __future__ import annotations

import csv
import html
import json
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
img.thumb{cursor:zoom-in}
tr.img:nth-child(even){background:#f0f0f0}
#viewer{position:fixed;inset:0;background:rgba(20,20,20,.95);display:flex;flex-direction:column}
#viewer[hidden]{display:none}
#viewer .bar{padding:8px;color:#eee;display:flex;gap:6px;align-items:center;flex-wrap:wrap}
#viewer button{font:inherit;padding:3px 10px;cursor:pointer}
#viewer button.on{background:#ffd54a}
#viewer .pane{flex:1;overflow:auto}
#viewer .pane img{max-width:none;max-height:none;border:0;cursor:zoom-out}
"""

_JS = """
const viewer = document.getElementById("viewer"), big = document.getElementById("big");
const bar = document.getElementById("versions"), label = document.getElementById("label");
let row = 0, ver = 0;
function show(r, v) {
  row = r; ver = (v + ROWS[r].versions.length) % ROWS[r].versions.length;
  const item = ROWS[r].versions[ver];
  big.src = item.src;  // same size for every version: the scroll position stays on the spot
  label.textContent = ROWS[r].name + ": " + item.label + (item.score ? " (" + item.score + ")" : "");
  bar.innerHTML = "";
  ROWS[r].versions.forEach((it, k) => {
    const b = document.createElement("button");
    b.textContent = it.label; b.className = k === ver ? "on" : "";
    b.onclick = () => show(row, k); bar.appendChild(b);
  });
  viewer.hidden = false;
}
document.querySelectorAll("img.thumb").forEach(im =>
  im.addEventListener("click", e => { e.preventDefault(); show(+im.dataset.row, +im.dataset.ver); }));
big.addEventListener("click", () => { viewer.hidden = true; });
document.getElementById("close").onclick = () => { viewer.hidden = true; };
document.addEventListener("keydown", e => {
  if (viewer.hidden) return;
  if (e.key === "Escape") viewer.hidden = true;
  if (e.key === "ArrowRight") show(row, ver + 1);
  if (e.key === "ArrowLeft") show(row, ver - 1);
});
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


def _scores(row: dict[str, Any] | None) -> list[str]:
    """Scores of one row, PSNR to 2 decimals and SSIM to 3."""
    if row is None:
        return []
    parts = []
    for key, unit in (("psnr_rgb", "dB RGB"), ("psnr_y", "dB Y")):
        if key in row:
            parts.append(f"{row[key]:.2f} {unit}")
    for key, lab in (("ssim_rgb", "SSIM RGB"), ("ssim_y", "SSIM Y")):
        if key in row:
            parts.append(f"{lab} {row[key]:.3f}")
    return parts


def _fmt(key: str, value: float) -> str:
    return f"{value:.3f}" if key.startswith("ssim") else f"{value:.2f}"


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

    def src(folder: str, name: str) -> str | None:
        matches = sorted((root / folder).glob(f"{name}.*"))
        return os.path.relpath(matches[0], out_path.parent).replace(os.sep, "/") if matches \
            else None

    def img(path: str | None, name: str, row: int, ver: int) -> str:
        if path is None:
            return "<em>missing</em>"
        rel = html.escape(path)
        return (f'<a href="{rel}"><img class="thumb" src="{rel}" loading="lazy" '
                f'alt="{html.escape(name)}" data-row="{row}" data-ver="{ver}"></a>')

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
            parts.extend(f"<td>{_fmt(k, m[k])}</td>" for k in keys)
            parts.append("</tr>")
        parts.append("</table><br>")
    parts.append("<table><tr><th>image</th><th>rainy</th>")
    parts.extend(f"<th>stage {html.escape(s)}</th>" for s in saved)
    parts.append("<th>clean</th></tr>")
    rows_js = []
    for r, name in enumerate(names):
        versions = [("rainy", "rainy", INPUT_STAGE)] + [
            (f"stage {s}", f"stage_{s}", s) for s in saved] + [("clean", "clean", None)]
        cells = [f"<td>{html.escape(name)}</td>"]
        items = []
        for label, folder, stage in versions:
            path = src(folder, name)
            scores = _scores(score.get((name, stage))) if stage else []
            cells.append(f"<td><figure>{img(path, name, r, len(items))}<figcaption>"
                         f"{'<br>'.join(scores)}</figcaption></figure></td>")
            if path is not None:
                items.append({"label": label, "src": path, "score": ", ".join(scores)})
        rows_js.append({"name": name, "versions": items})
        parts.append('<tr class="img">' + "".join(cells) + "</tr>")
    parts.append("</table>")
    parts.append('<div id="viewer" hidden><div class="bar"><button id="close">close (Esc)'
                 '</button><span id="versions"></span><span id="label"></span></div>'
                 '<div class="pane"><img id="big" alt="full size"></div></div>')
    rows_json = json.dumps(rows_js).replace("</", "<\\/")
    parts.append(f"<script>const ROWS = {rows_json};{_JS}</script></body></html>")
    write_text_atomic(out_path, "\n".join(parts) + "\n")
    return out_path
