"""Rain realism: statistics of R = O - B for two real rain families and every sdsen.rain preset.

Real rain layers (measured only; no image of them is ever written into the repository):

- ``rain800``: the 600 training pairs of ``../shared/data/rain800_train`` (the pairs named in its
  ``val.txt`` are left out), real photographs with the field's standard synthetic streaks;
- ``raincityscapes``: the 100 pairs of ``../shared/data/raincityscapes_test100``, Cityscapes
  frames with physically rendered, hazy 100 mm/h rain (a validation set: never fitted on).

Synthetic rain layers: each preset drawn over the clean halves of the rain800 training pairs
(the built-in photos when that folder is absent). Every layer is measured at the data's own
resolution (images above 1024 px are centre-cropped, never resized).

Per layer (:mod:`sdsen.rain.stats`): grey R percentiles and negative share, low-frequency (veil)
share, dominant angle and coherence, the streaks' mean cross-section and its FWHM, the lengths
and number per megapixel of separate streaks, and the per-channel mean of R (its colour).

Prints a markdown table (one row per source), writes ``figures/rain_realism_stats.png``
(histograms and profiles) and ``figures/rain_realism_examples.png`` (1:1 crops of each preset's
rain on the built-in test photo). ``--real-crops PATH`` also writes 1:1 crops of real rain800
layers beside synthetic ones, for your own eyes: keep it out of the repository (the data's
licence).

``--fit N`` fits the ``rain800`` preset: N parameter sets drawn from broad ranges are rendered
over the training backgrounds and measured; each of the 600 real layers picks its nearest
rendered layer (statistics scaled by the real spread); the 10th-90th percentiles of the picked
parameters are the preset's ranges.

Usage::

    python benchmarks/rain_realism.py [--samples 40] [--presets ...] [--no-figures]
        [--real-crops /tmp/rain_crops.png] [--fit 400]

Exits 0 with a message when neither data folder is present.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from sdsen.data import PairedImageFolder, builtin_clean_images
from sdsen.data.folders import read_name_list, split_by_names
from sdsen.metrics import psnr
from sdsen.rain import (
    PRESETS,
    RainParams,
    RainPreset,
    dominant_orientation,
    intensity_histogram,
    low_frequency_share,
    orientation_histogram,
    rain_colour,
    sample_params,
    streak_profile,
    streak_segments,
    synthesize_batch,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MAX_SIDE = 1024
PRESET_NAMES = ("uncalibrated", "v1-light", "v1-heavy", "v1-heavy-haze", "v1-mixed", "rain800",
                "light", "heavy", "heavy-haze", "mixed")
COLUMNS = ("mean", "p99", "neg_frac", "lowfreq", "angle_sd", "coherence", "fwhm", "len_p50",
           "len_p90", "per_mp", "colour", "psnr_p50", "psnr_p90")
# statistics the fit matches (each scaled by the spread of the real values)
FIT_KEYS = ("mean", "p99", "lowfreq", "angle", "coherence", "fwhm", "len_p50", "len_p90",
            "per_mp")
# broad ranges the fit draws from: (low, high), density log-uniform, layers an integer range
SEARCH = {"angle": (-30.0, 30.0), "length": (8.0, 60.0), "width": (0.8, 3.0),
          "density": (0.002, 0.05), "intensity": (0.1, 0.8), "layers": (1, 3),
          "haze": (0.0, 0.3), "atmosphere": (0.0, 0.2), "taper": (0.0, 1.0),
          "layer_scale": (0.4, 0.8), "layer_angle_spread": (0.0, 10.0)}


def centre_crop(img: np.ndarray) -> np.ndarray:
    """At most MAX_SIDE x MAX_SIDE from the centre: the data's own resolution, bounded cost."""
    h, w = img.shape[:2]
    y, x = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    return img[y:y + MAX_SIDE, x:x + MAX_SIDE]


def rain800_pairs(root: Path, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rainy, clean) of the training pairs (val.txt left out), float32 (H, W, 3)."""
    folder = PairedImageFolder(root)
    val = root / "val.txt"
    if val.exists():
        folder = split_by_names(folder, read_name_list(val))[0]
    for i in range(min(limit, len(folder))):
        rainy, clean = folder.load_pair(i)
        yield centre_crop(rainy), centre_crop(clean)


def cityscapes_pairs(root: Path, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    folder = PairedImageFolder(root)
    for i in range(min(limit, len(folder))):
        yield folder.load_pair(i)


def measure(rain: np.ndarray, clean: np.ndarray) -> dict:
    """Statistics of one rain layer ``(H, W, 3)`` over its background ``clean``."""
    g = rain.mean(axis=2).astype(np.float64)
    b = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)).permute(2, 0, 1)
    r = torch.from_numpy(np.ascontiguousarray(rain, dtype=np.float32)).permute(2, 0, 1)
    angle, coherence = dominant_orientation(g)
    _, profile, fwhm = streak_profile(g, angle=angle)
    lengths, per_mp = streak_segments(g, angle=angle)
    p99 = float(np.percentile(g, 99))
    return {
        "mean": float(g.mean()), "p99": p99, "neg_frac": float((g < 0).mean()),
        "lowfreq": low_frequency_share(g), "angle": angle, "coherence": coherence,
        "fwhm": fwhm, "len_p50": float(np.median(lengths)) if len(lengths) else np.nan,
        "len_p90": float(np.percentile(lengths, 90)) if len(lengths) else np.nan,
        "per_mp": per_mp, "rgb": rain_colour(rain), "profile": profile, "lengths": lengths,
        "psnr_y": float(psnr((b + r).clamp(0, 1), b, "y")),
        "ohist": orientation_histogram(g, bins=36)[0], "ihist": intensity_histogram(g)[0],
    }


def summarize(rows: list[dict]) -> dict:
    """Means over layers (medians for the streak sizes), plus the per-layer arrays."""
    out: dict = {"n": len(rows), "rows": rows}
    for k in ("mean", "p99", "neg_frac", "lowfreq", "coherence", "per_mp"):
        out[k] = float(np.nanmean([r[k] for r in rows]))
    for k in ("fwhm", "len_p50", "len_p90"):
        out[k] = float(np.nanmedian([r[k] for r in rows]))
    out["psnr_p50"], out["psnr_p90"] = np.percentile([r["psnr_y"] for r in rows], [50, 90])
    angles = np.array([r["angle"] for r in rows])
    out["angle_sd"] = float(np.sqrt(np.mean(angles**2)))  # spread around vertical
    rgb = np.mean([r["rgb"] for r in rows], axis=0) * 255
    out["colour"] = "/".join(f"{v:.1f}" for v in rgb)
    for k in ("profile", "ohist", "ihist"):
        out[k] = np.nanmean([r[k] for r in rows], axis=0)
    out["lengths"] = np.concatenate([r["lengths"] for r in rows])
    return out


def render(params: RainParams, clean: np.ndarray) -> np.ndarray:
    """The synthetic rain layer ``(H, W, 3)`` of ``params`` over ``clean``."""
    b = torch.from_numpy(np.ascontiguousarray(clean)).permute(2, 0, 1)[None]
    _, _, rain = synthesize_batch(b, params)
    return rain[0].permute(1, 2, 0).numpy()


def synthetic_statistics(preset: str | RainPreset, clean: list[np.ndarray], n: int,
                         seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        params, b = sample_params(preset, rng), clean[int(rng.integers(len(clean)))]
        rows.append(measure(render(params, b), b))
    return summarize(rows)


def cell(value: object) -> str:
    if isinstance(value, str):
        return value
    v = float(value)  # type: ignore[arg-type]
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"


def print_table(results: dict[str, dict]) -> None:
    print("\n| source | n | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for name, r in results.items():
        print(f"| {name} | {r['n']} | " + " | ".join(cell(r[k]) for k in COLUMNS) + " |")
    print("\nmean, p99: grey R; neg_frac: share of pixels with R < 0; lowfreq: energy share of R "
          "blurred by a Gaussian of sigma 12 px (veil); angle_sd: RMS of the per-layer dominant "
          "angle around vertical (deg); coherence: of the global structure tensor; fwhm: width "
          "at half maximum of the mean streak cross-section (px, median over layers); len_p50, "
          "len_p90: median and 90th percentile of the separate streaks' lengths (px, median over "
          "layers); per_mp: separate streaks per megapixel; colour: per-channel mean of R, R/G/B, "
          "in 8-bit levels; psnr_p50, psnr_p90: median and 90th percentile over layers of the "
          "rainy image's Y PSNR against its background (dB; higher = lighter rain).")


def _fit_features(rows: list[dict], scale: np.ndarray) -> np.ndarray:
    x = np.array([[r[k] for k in FIT_KEYS] for r in rows], dtype=np.float64)
    return np.nan_to_num(x / scale, nan=1e3)


def search_params(rng: np.random.Generator) -> RainParams:
    """One parameter set from the broad SEARCH ranges."""
    draw = {k: float(rng.uniform(*v)) for k, v in SEARCH.items() if k not in ("density", "layers")}
    lo, hi = np.log(SEARCH["density"])
    return RainParams(**draw, density=float(np.exp(rng.uniform(lo, hi))),
                      layers=int(rng.integers(SEARCH["layers"][0], SEARCH["layers"][1] + 1)),
                      atmosphere_relative=True, seed=int(rng.integers(0, 2**31 - 1)))


def fit(real: dict, clean: list[np.ndarray], n: int, seed: int) -> None:
    """Nearest-neighbour fit of preset ranges to the real layers; prints the ranges."""
    rng = np.random.default_rng(seed)
    cands, rows = [], []
    for _ in range(n):
        p = search_params(rng)
        cands.append(p)
        b = clean[int(rng.integers(len(clean)))]
        rows.append(measure(render(p, b), b))
    real_x = np.array([[r[k] for k in FIT_KEYS] for r in real["rows"]], dtype=np.float64)
    q75, q25 = np.nanpercentile(real_x, [75, 25], axis=0)
    scale = np.maximum(q75 - q25, 1e-6)
    a, b = _fit_features(real["rows"], scale), _fit_features(rows, scale)
    nearest = np.argmin(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), axis=1)
    picked = [asdict(cands[i]) for i in nearest]
    dist = np.sqrt(((a - b[nearest]) ** 2).sum(-1))
    print(f"\nfit: {n} candidates, {len(a)} real layers; {len(set(nearest.tolist()))} distinct "
          f"candidates picked; distance to the nearest (scaled units) median {np.median(dist):.2f}")
    print("| parameter | p10 | p50 | p90 |\n|---|---|---|---|")
    for k in SEARCH:
        v = np.array([p[k] for p in picked], dtype=np.float64)
        lo, mid, hi = np.percentile(v, [10, 50, 90])
        print(f"| {k} | {lo:.4g} | {mid:.4g} | {hi:.4g} |")


def stats_figure(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    oedges, iedges = np.linspace(-90, 90, 37), np.linspace(-0.3, 0.6, 61)
    ledges = np.arange(0, 81, 4)
    # tab10 without its grey (the RainCityscapes line), then navy
    colours = iter([c for i, c in enumerate(plt.cm.tab10.colors) if i != 7] + ["navy"] * 99)
    for name, r in results.items():
        real = name.startswith("real")
        older = name == "uncalibrated" or name.startswith("v1-")  # dashed: kept for contrast
        style = ({"lw": 2.5, "color": "k" if "rain800" in name else "0.55"} if real
                 else {"lw": 1.0, "ls": "--", "color": next(colours)} if older
                 else {"lw": 1.5, "color": next(colours)})
        ax[0, 0].plot(0.5 * (oedges[1:] + oedges[:-1]), r["ohist"], label=name, **style)
        ax[0, 1].semilogy(0.5 * (iedges[1:] + iedges[:-1]), r["ihist"] + 1e-6, **style)
        off = np.arange(len(r["profile"])) - len(r["profile"]) // 2
        ax[0, 2].plot(off, r["profile"], marker=".", **style)
        hist, _ = np.histogram(r["lengths"], bins=ledges)
        ax[1, 0].plot(0.5 * (ledges[1:] + ledges[:-1]), hist / max(hist.sum(), 1), **style)
    names = list(results)
    short = [n.replace("real ", "") + (" (real)" if n.startswith("real") else "") for n in names]
    ax[1, 1].boxplot([[row["lowfreq"] for row in results[k]["rows"]] for k in names],
                     showfliers=False)
    ax[1, 2].boxplot([[row["per_mp"] for row in results[k]["rows"]] for k in names],
                     showfliers=False)
    for a in ax[1, 1:]:
        a.set_xticks(range(1, len(names) + 1), short, rotation=40, ha="right",
                     rotation_mode="anchor", fontsize=8)
    ax[0, 0].set(xlabel="local streak angle (deg, 0 = vertical, + = top leans right)",
                 ylabel="energy share", title="orientation")
    ax[0, 1].set(xlabel="grey R = O - B", ylabel="fraction of pixels", title="intensity of R")
    ax[0, 2].set(xlabel="pixels across the streak", ylabel="high-passed R / centre",
                 title="mean streak cross-section")
    ax[1, 0].set(xlabel="streak length (px)", ylabel="share of streaks", title="streak lengths")
    ax[1, 1].set(ylabel="low-frequency share (sigma 12)", title="veil share per layer")
    ax[1, 2].set(ylabel="separate streaks per megapixel", title="density per layer")
    ax[0, 0].legend(fontsize=8)
    fig.suptitle("Rain layer statistics: real rain (rain800 black, raincityscapes grey) vs "
                 "sdsen.rain presets (older ones dashed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _tile(img: np.ndarray, rain: np.ndarray, size: int) -> np.ndarray:
    """A rainy crop above its grey rain layer (0.5 + R, clipped), 1:1."""
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    r = np.clip(0.5 + rain[y:y + size, x:x + size].mean(axis=2), 0, 1)
    return np.concatenate([img[y:y + size, x:x + size], np.repeat(r[..., None], 3, 2)], axis=0)


def crops_figure(columns: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Columns of 1:1 crops (no resampling: figimage) with titles above."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gap, top, dpi = 8, 28, 100
    h, w = columns[0][1].shape[:2]
    width = len(columns) * (w + gap) + gap
    fig = plt.figure(figsize=(width / dpi, (h + top + gap) / dpi), dpi=dpi)
    for i, (title, tile) in enumerate(columns):
        x0 = gap + i * (w + gap)
        fig.figimage(np.clip(tile, 0, 1), xo=x0, yo=gap, origin="upper")
        fig.text((x0 + w / 2) / width, 1 - 6 / (h + top + gap), title, ha="center", va="top",
                 fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def synthetic_columns(clean: np.ndarray, size: int) -> list[tuple[str, np.ndarray]]:
    cols = []
    for i, name in enumerate(PRESET_NAMES):
        p = sample_params(name, np.random.default_rng(10 + i))
        rain = render(p, clean)
        cols.append((f"{name}: {p.angle:+.0f} deg", _tile(clean + rain, rain, size)))
    return cols


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rain800", type=Path, default=DATA / "rain800_train")
    ap.add_argument("--cityscapes", type=Path, default=DATA / "raincityscapes_test100")
    ap.add_argument("--limit", type=int, default=600, help="max real pairs per folder")
    ap.add_argument("--samples", type=int, default=40, help="synthetic layers per preset")
    ap.add_argument("--presets", nargs="+", default=list(PRESET_NAMES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--figures", type=Path, default=REPO / "figures")
    ap.add_argument("--real-crops", type=Path, default=None,
                    help="also write 1:1 crops of real rain800 layers here (never commit it)")
    ap.add_argument("--fit", type=int, default=0, metavar="N",
                    help="fit the rain800 preset's ranges from N candidate parameter sets")
    args = ap.parse_args(argv)
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; valid: {sorted(PRESETS)}")
    if args.real_crops is not None and REPO in args.real_crops.resolve().parents:
        raise SystemExit(f"--real-crops {args.real_crops} is inside the repository; the data's "
                         "licence forbids committing its images. Fix: write it elsewhere, e.g. "
                         "/tmp/rain_crops.png.")
    have = {"rain800": args.rain800.is_dir(), "raincityscapes": args.cityscapes.is_dir()}
    if not any(have.values()):
        print(f"neither {args.rain800} nor {args.cityscapes} found: skipping the realism "
              "benchmark. Pass --rain800 DIR / --cityscapes DIR.")
        return 0
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    # synthetic rain is drawn over the rain800 training backgrounds (the built-in photos without
    # that folder), kept from the one pass that measures the real layers
    clean: list[np.ndarray] = []
    if have["rain800"]:
        rows = []
        for o, b in rain800_pairs(args.rain800, args.limit):
            rows.append(measure(o - b, b))
            clean.append(b)
        results["real rain800"] = summarize(rows)
    else:
        clean = [centre_crop(img.astype(np.float32)) for img in builtin_clean_images("all")]
    if have["raincityscapes"]:
        results["real raincityscapes"] = summarize(
            [measure(o - b, b) for o, b in cityscapes_pairs(args.cityscapes, args.limit)])
    for name in args.presets:
        results[name] = synthetic_statistics(name, clean, args.samples, args.seed)
    print_table(results)
    if args.fit and have["rain800"]:
        fit(results["real rain800"], clean, args.fit, args.seed + 1)
    if not args.no_figures:
        stats_figure(results, args.figures / "rain_realism_stats.png")
        photo = builtin_clean_images("test")[0].astype(np.float32)  # never a dataset image
        crops_figure(synthetic_columns(photo, 128), args.figures / "rain_realism_examples.png")
        print(f"\nwrote {args.figures / 'rain_realism_stats.png'} and "
              f"{args.figures / 'rain_realism_examples.png'}")
    if args.real_crops is not None and have["rain800"]:
        real = [(f"rain800 #{i}", _tile(o, o - b, 128))
                for i, (o, b) in enumerate(rain800_pairs(args.rain800, 4))]
        crops_figure(real + synthetic_columns(clean[0], 128), args.real_crops)
        print(f"wrote {args.real_crops} (real rain800 layers: for your eyes, never commit it)")
    print(f"runtime {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
