"""Calibration ablation: one model and budget per rain preset, trained on synthetic rain only.

    python benchmarks/rain_ablation.py --out /tmp/rain_ablation
        [--presets uncalibrated v1-mixed rain800 mixed] [--steps 600] [--images 12]
    python benchmarks/rain_ablation.py --out /tmp/rain_ablation --eval-only   # score existing runs

Trains one one-stage p4 SDSEN per preset (equivariant decoder, rot90 / mirror turns, batch 8 of
64x64, lr 1e-3, one torch thread each, all at once) on synthetic rain alone
(``--synthetic-mix 1 --clean-mix 0``): the preset's rain drawn over the clean halves of the 600
training pairs of ``rain800_train``, whose real rainy halves are never seen. Then scores each
model on real rain it never saw, whole images: the first ``--images`` validation pairs of
``rain800_train`` (its ``val.txt``) and the first ``--images`` pairs of
``raincityscapes_test100``. Prints mean Y PSNR / SSIM of the rainy input and of each model's
output, truncated to 8 bits: the better a preset imitates a rain family, the better a model
trained on it alone should derain that family.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from targets import default_data_root, means, rain800_val, score_pairs

from sdsen.data import PairedImageFolder
from sdsen.rain import PRESETS
from sdsen.train import model_from_checkpoint


def train_all(out: Path, presets: list[str], steps: int, data: Path) -> None:
    """Train one model per preset in its own process (one torch thread each), all at once."""
    common = ["--preset", "cpu", "--data", str(data), "--val-list", str(data / "val.txt"),
              "--batch-size", "8", "--patch-size", "64", "--lr", "1e-3", "--steps", str(steps),
              "--milestones", str(10 * steps), "--augment", "--synthetic-mix", "1",
              "--clean-mix", "0", "--model-config", "stages=1", "decoder=equivariant",
              "--val-every", str(10 * steps), "--no-progress", "--no-tensorboard"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "sdsen", "train", *common,
                               "--rain-preset", name, "--run-dir", str(out / name)], env=env)
             for name in presets]
    if any(p.wait() for p in procs):
        raise SystemExit("a training run failed (see its output above)")


def score(model: torch.nn.Module | None, images: int, root: Path) -> dict[str, tuple]:
    """``{family: ((input psnr, ssim), (output psnr, ssim))}`` on the first ``images`` pairs."""
    folders = {"rain800 val": rain800_val(root),
               "raincityscapes": PairedImageFolder(root / "raincityscapes_test100")}
    out = {}
    for family, folder in folders.items():
        pairs = ((folder.names[i], *folder[i]) for i in range(min(images, len(folder))))
        rows = score_pairs(model.eval(), pairs, last_only=True)["rows"]
        psnr, ssim = means(rows), means(rows, "ssim_y")
        out[family] = ((psnr["input"], ssim["input"]),
                       (list(psnr.values())[-1], list(ssim.values())[-1]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs")
    parser.add_argument("--presets", nargs="+",
                        default=["uncalibrated", "v1-mixed", "rain800", "mixed"])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--eval-only", action="store_true", help="score the runs in --out")
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    args = parser.parse_args(argv)
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; valid: {sorted(PRESETS)}")
    torch.set_num_threads(1)
    if not args.eval_only:
        train_all(args.out, args.presets, args.steps, args.data_root / "rain800_train")
    results = {name: score(model_from_checkpoint(args.out / name / "latest.pt"), args.images,
                           args.data_root) for name in args.presets}
    families = list(next(iter(results.values())))
    print(f"\n{args.steps} steps per model, first {args.images} pairs of each family, "
          "Y PSNR (dB) / SSIM, last stage, 8-bit outputs\n")
    print("| trained on | " + " | ".join(families) + " |")
    print("|---|" + "---|" * len(families))
    first = results[args.presets[0]]
    print("| (rainy input) | " + " | ".join(f"{first[f][0][0]:.2f} / {first[f][0][1]:.3f}"
                                           for f in families) + " |")
    for name, r in results.items():
        print(f"| `{name}` | " + " | ".join(f"{r[f][1][0]:.2f} / {r[f][1][1]:.3f}"
                                            for f in families) + " |")


if __name__ == "__main__":
    main()
