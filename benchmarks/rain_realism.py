"""Rain realism: statistics of synthetic rain layers against real rendered rain.

Real rain layers ``R = O - B`` come from the validation folder (``rain/X.png`` with ``gt/X.png``,
default ``../shared/data/raincityscapes_test100``, physically rendered 100 mm/h rain on
Cityscapes frames); it is only measured here (numbers and histograms), never trained on, and no
figure shows its images. Synthetic rain layers come from ``sdsen.rain`` presets applied to
scikit-image's bundled photos cropped to 512x256.

Per image: dominant streak angle and coherence (gradient structure tensor), streak width and
length (autocorrelation along / across the streak), grey R value percentiles and the fraction of
negative R, and the low-frequency (haze / veiling) share of R's energy (Gaussian sigma 12 px).
Prints the table (means over images, with the spread of the angle), writes
``figures/rain_realism_stats.png`` (histograms real vs each preset) and
``figures/rain_realism_examples.png`` (synthetic examples only).

Usage::

    .venv/bin/python benchmarks/rain_realism.py [--root DIR] [--limit 100] [--samples 40]
        [--presets uncalibrated light heavy heavy-haze mixed] [--no-figures]

Exits 0 with a message when the folder is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from sdsen.rain import (
    PRESETS,
    intensity_histogram,
    orientation_histogram,
    rain_statistics,
    sample_params,
    synthesize_batch,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "raincityscapes_test100"
SIZE = (256, 512)  # H, W of the validation images
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
COLUMNS = ("mean", "p01", "p99", "neg_frac", "lowfreq", "angle_sd", "coherence", "width",
           "length")
# weights of the calibration distance: |synthetic - real| / scale, averaged
SCALES = {"mean": 0.02, "p01": 0.05, "p99": 0.05, "neg_frac": 0.05, "lowfreq": 0.1,
          "angle_sd": 5.0, "coherence": 0.1, "width": 0.5, "length": 5.0}


def load_photos() -> list[np.ndarray]:
    """scikit-image's bundled RGB photos (no download), float32 (H, W, 3) in [0, 1]."""
    import skimage.data

    out = []
    for name in PHOTOS:
        try:
            img = getattr(skimage.data, name)()
        except Exception as exc:  # noqa: BLE001 - a photo that needs a download is skipped
            print(f"skipping skimage.data.{name}: {exc}", file=sys.stderr)
            continue
        img = img[..., :3].astype(np.float32) / 255
        h, w = img.shape[:2]
        s = max(SIZE[0] / h, SIZE[1] / w)
        if s > 1:
            img = cv2.resize(img, (round(w * s + 0.5), round(h * s + 0.5)),
                             interpolation=cv2.INTER_CUBIC).clip(0, 1)
        out.append(img)
    if not out:
        raise SystemExit("no scikit-image photo could be loaded")
    return out


def random_crop(img: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    h, w = img.shape[:2]
    y = int(rng.integers(0, h - SIZE[0] + 1))
    x = int(rng.integers(0, w - SIZE[1] + 1))
    crop = img[y:y + SIZE[0], x:x + SIZE[1]]
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {path}")
    return img[..., ::-1].astype(np.float32) / 255


def measure(rain: np.ndarray | torch.Tensor) -> dict:
    st = rain_statistics(rain)
    st["ohist"] = orientation_histogram(rain, bins=36)[0]
    st["ihist"] = intensity_histogram(rain, bins=60)[0]
    return st


def summarize(rows: list[dict]) -> dict:
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if np.isscalar(rows[0][k])}
    angles = np.array([r["angle"] for r in rows])
    out["angle_sd"] = float(np.sqrt(np.mean(angles**2)))  # spread around vertical
    out["ohist"] = np.mean([r["ohist"] for r in rows], axis=0)
    out["ihist"] = np.mean([r["ihist"] for r in rows], axis=0)
    out["lowfreq_all"] = np.array([r["lowfreq"] for r in rows])
    out["width_all"] = np.array([r["width"] for r in rows])
    out["length_all"] = np.array([r["length"] for r in rows])
    out["n"] = len(rows)
    return out


def distance(syn: dict, real: dict) -> float:
    return float(np.mean([abs(syn[k] - real[k]) / SCALES[k] for k in SCALES]))


def real_statistics(root: Path, limit: int) -> dict:
    files = sorted((root / "rain").glob("*.png"))[:limit]
    rows = []
    for f in files:
        gt = root / "gt" / f.name
        if not gt.exists():
            print(f"warning: no gt for {f.name}; skipped", file=sys.stderr)
            continue
        rows.append(measure(read_rgb(f) - read_rgb(gt)))
    if not rows:
        raise SystemExit(f"no rain/X.png + gt/X.png pairs under {root}")
    return summarize(rows)


def synthetic_statistics(preset: str, photos: list[np.ndarray], n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        clean = random_crop(photos[int(rng.integers(len(photos)))], rng)[None]
        _, _, rain = synthesize_batch(clean, sample_params(preset, rng))
        rows.append(measure(rain[0]))
    return summarize(rows)


def print_table(results: dict[str, dict], real: dict) -> None:
    print("\n| source | n | " + " | ".join(COLUMNS) + " | distance |")
    print("|---|---|" + "---|" * (len(COLUMNS) + 1))
    for name, r in results.items():
        d = "-" if r is real else f"{distance(r, real):.2f}"
        vals = " | ".join(f"{r[k]:.3f}" if abs(r[k]) < 10 else f"{r[k]:.1f}" for k in COLUMNS)
        print(f"| {name} | {r['n']} | {vals} | {d} |")
    print("\nmean, p01, p99: grey R values; neg_frac: share of pixels with R < 0; lowfreq: energy "
          "share of R blurred by a Gaussian of sigma 12 px; angle_sd: RMS of the per-image "
          "dominant angle around vertical (deg); coherence: of the global structure tensor; "
          "width, length: px, from R's autocorrelation; distance: mean |syn - real| / scale "
          f"with scales {SCALES}.")


def stats_figure(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    oedges = np.linspace(-90, 90, 37)
    iedges = np.linspace(-0.3, 0.6, 61)
    for name, r in results.items():
        style = {"color": "k", "lw": 2.5} if name.startswith("real") else {"lw": 1.3}
        ax[0, 0].plot(0.5 * (oedges[1:] + oedges[:-1]), r["ohist"], label=name, **style)
        ax[0, 1].semilogy(0.5 * (iedges[1:] + iedges[:-1]), r["ihist"] + 1e-6, label=name,
                          **style)
        ax[1, 1].scatter(r["width_all"], r["length_all"], s=8, label=name,
                         color=style.get("color"), alpha=0.6)
    names = list(results)
    ax[1, 0].boxplot([results[k]["lowfreq_all"] for k in names], showfliers=False)
    ax[1, 0].set_xticks(range(1, len(names) + 1), [k.split(' ')[0] for k in names], rotation=20)
    ax[0, 0].set(xlabel="local streak angle (deg, 0 = vertical, + = top leans right)",
                 ylabel="energy share", title="orientation histogram")
    ax[0, 1].set(xlabel="grey R = O - B", ylabel="fraction of pixels", title="intensity of R")
    ax[1, 0].set(ylabel="low-frequency share (sigma 12)", title="haze / veiling share per image")
    ax[1, 1].set(xlabel="streak width (px)", ylabel="streak length (px)",
                 title="streak size per image (autocorrelation)")
    ax[0, 0].legend(fontsize=8)
    fig.suptitle("Rain layer statistics: real rendered rain (black) vs sdsen.rain presets")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def examples_figure(presets: list[str], photos: list[np.ndarray], path: Path) -> None:
    """Synthetic examples only: each preset on a built-in photo, rainy and R."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(1)
    clean = random_crop(photos[0], rng)[None]
    fig, ax = plt.subplots(len(presets), 2, figsize=(10, 2.6 * len(presets)), squeeze=False)
    for i, name in enumerate(presets):
        p = sample_params(name, np.random.default_rng(10 + i))
        rainy, _, rain = synthesize_batch(clean, p)
        ax[i, 0].imshow(rainy[0].permute(1, 2, 0).numpy())
        ax[i, 1].imshow(rain[0].mean(0).numpy(), cmap="RdBu_r", vmin=-0.5, vmax=0.5)
        ax[i, 0].set_title(f"{name}: angle {p.angle:.0f}, length {p.length:.0f}, width "
                           f"{p.width:.1f}, layers {p.layers}, haze {p.haze:.2f}", fontsize=8)
        ax[i, 1].set_title("R = O - B (grey, -0.5 blue .. 0.5 red)", fontsize=8)
        for a in ax[i]:
            a.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--limit", type=int, default=100, help="max real pairs")
    ap.add_argument("--samples", type=int, default=40, help="synthetic images per preset")
    ap.add_argument("--presets", nargs="+", default=["uncalibrated", "light", "heavy",
                                                     "heavy-haze", "mixed"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--figures", type=Path, default=REPO / "figures")
    args = ap.parse_args()
    if not (args.root / "rain").is_dir() or not (args.root / "gt").is_dir():
        print(f"validation folder {args.root} (with rain/ and gt/) not found: skipping the "
              "realism benchmark. Pass --root DIR to point at it.")
        return 0
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; valid: {sorted(PRESETS)}")
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    real = real_statistics(args.root, args.limit)
    photos = load_photos()
    results = {f"real ({args.root.name})": real}
    for name in args.presets:
        results[name] = synthetic_statistics(name, photos, args.samples, args.seed)
    print_table(results, real)
    if not args.no_figures:
        stats_figure(results, args.figures / "rain_realism_stats.png")
        examples_figure(args.presets, photos, args.figures / "rain_realism_examples.png")
        print(f"\nwrote {args.figures / 'rain_realism_stats.png'} and "
              f"{args.figures / 'rain_realism_examples.png'}")
    print(f"runtime {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
