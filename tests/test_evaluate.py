"""sdsen.evaluate and sdsen.gallery: per-image / per-stage scores, results folder, HTML."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.data import PairedImageFolder, write_image
from sdsen.evaluate import evaluate
from sdsen.gallery import write_gallery
from sdsen.metrics import psnr, quantize_8bit, ssim
from sdsen.models import ModelConfig, build_model, derain_image

TINY = ModelConfig(channels=2, stages=2, blocks=1)


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for name, (h, w) in {"a": (23, 31), "b": (26, 20)}.items():  # odd, non-square
        clean = rng.random((h, w, 3), dtype=np.float32)
        rainy = np.clip(clean + 0.3 * (rng.random((h, w, 1)) > 0.8), 0, 1)
        write_image(root / "rain" / f"{name}.png", rainy)
        write_image(root / "gt" / f"{name}.png", clean)
    return root


def test_evaluate_rows_means_and_identity(pairs_dir: Path) -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    ds = PairedImageFolder(pairs_dir)
    res = evaluate(model, ds, progress=False)
    assert res.names == ds.names == ["a", "b"]
    assert res.stages == ["input", "1", "2"]
    assert len(res.rows) == 2 * 3
    assert res.metric_keys == ["psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"]
    rainy, clean = ds[1]
    ident = next(r for r in res.rows if r["image"] == "b" and r["stage"] == "input")
    assert ident["psnr_rgb"] == pytest.approx(float(psnr(rainy, clean)), abs=1e-6)
    assert ident["ssim_y"] == pytest.approx(float(ssim(rainy, clean, "y")), abs=1e-6)
    # stage 2 is the model's final estimate, 8-bit truncated
    with torch.no_grad():
        est = quantize_8bit(model.derain(rainy[None]))[0]
    last = res.per_image()[1]
    assert last["stage"] == "2" and last["psnr_rgb"] == pytest.approx(float(psnr(est, clean)))
    means = res.means()
    assert means["input"]["psnr_y"] == pytest.approx(
        np.mean([r["psnr_y"] for r in res.rows if r["stage"] == "input"])
    )
    assert "images" in res.table() and "psnr_y" in res.table()

    only_last = evaluate(model, ds, protocols=("y",), stages="last", progress=False)
    assert only_last.stages == ["input", "2"] and only_last.metric_keys == ["psnr_y", "ssim_y"]
    assert only_last.means()["2"]["psnr_y"] == pytest.approx(means["2"]["psnr_y"])

    tiled = evaluate(model, ds, stages="last", tile=16, overlap=8, progress=False)
    assert tiled.means()["2"]["psnr_rgb"] == pytest.approx(means["2"]["psnr_rgb"], abs=0.2)
    est_tiled = quantize_8bit(derain_image(model, rainy, tile=16, overlap=8))  # b is 26 x 20
    assert not torch.equal(est_tiled, est)  # two tiles: the blend changes some pixels
    last_tiled = next(r for r in tiled.rows if r["image"] == "b" and r["stage"] == "2")
    assert last_tiled["psnr_rgb"] == pytest.approx(float(psnr(est_tiled, clean)), abs=1e-9)
    with pytest.raises(ValueError, match="protocol"):
        evaluate(model, ds, protocols=("lab",), progress=False)


def test_results_folder_and_gallery(pairs_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    out = tmp_path / "results"
    res = evaluate(build_model(TINY), PairedImageFolder(pairs_dir), save_dir=out, progress=False)
    for sub in ("rainy", "clean", "stage_1", "stage_2"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["a.png", "b.png"], sub
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(res.rows) + 3  # + one MEAN row per stage
    assert rows[-1]["image"] == "MEAN"
    assert (out / "summary.json").is_file()
    with pytest.raises(FileExistsError):  # never overwrites silently
        evaluate(build_model(TINY), PairedImageFolder(pairs_dir), save_dir=out, progress=False)

    html_path = write_gallery(out, tmp_path / "site" / "gallery.html", title="test <run>")
    html = html_path.read_text()
    assert "test &lt;run&gt;" in html and "stage 2" in html
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 2 * 4  # rainy, 2 stages, clean per image
    for src in srcs:  # relative links that resolve from the page's folder
        assert not src.startswith("/") and (html_path.parent / src).is_file(), src
    # the viewer: every image's versions, full size, switched at the same spot
    rows = json.loads(re.search(r"const ROWS = (\[.*?\]);", html).group(1))
    assert [r["name"] for r in rows] == ["a", "b"]
    assert [v["label"] for v in rows[0]["versions"]] == ["rainy", "stage 1", "stage 2", "clean"]
    assert all((html_path.parent / v["src"]).is_file() for r in rows for v in r["versions"])
    assert re.fullmatch(r"\d+\.\d\d dB RGB, \d+\.\d\d dB Y, SSIM RGB 0\.\d{3}, SSIM Y 0\.\d{3}",
                        rows[0]["versions"][1]["score"])
    thumbs = re.findall(r'class="thumb"[^>]*data-row="(\d)" data-ver="(\d)"', html)
    assert len(thumbs) == 8 and ("1", "3") in thumbs
    means = re.findall(r"<td>(\d+\.\d+)</td>", html)
    assert means and all(len(m.split(".")[1]) in (2, 3) for m in means)  # 2 (PSNR) or 3 (SSIM)
    assert write_gallery(out).name == "index.html"
    with pytest.raises(FileNotFoundError, match="not a results folder"):
        write_gallery(pairs_dir)


def test_gallery_viewer_in_a_headless_browser(pairs_dir: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium on this machine")
    torch.manual_seed(0)
    out = tmp_path / "results"
    evaluate(build_model(TINY), PairedImageFolder(pairs_dir), save_dir=out, progress=False)
    page = write_gallery(out)
    # click the second image's stage-2 thumbnail, then step right: the clean image, same row
    page.write_text(page.read_text().replace("</body>", (
        "<script>document.querySelectorAll('img.thumb')[6].click();"
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}));"
        "document.title = (viewer.hidden ? 'closed' : 'open') + '|' + label.textContent;"
        "</script></body>")))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60, check=False).stdout
    assert "<title>open|b: clean</title>" in dom
