"""Recipe ablation: equal short budgets side by side, scored on vertical and horizontal rain.

    python benchmarks/recipe_ablation.py --out /tmp/ablation [--steps 400] [--images 12]
    python benchmarks/recipe_ablation.py --out /tmp/ablation --eval-only   # score existing runs

Trains one-stage p4 SDSEN models on ``rain800_train`` (less ``val.txt``), batch 8 of 64x64,
lr 1e-3, all variants at once, one torch thread each (:data:`VARIANTS`: official decoder
without and with rot90 / mirror augmentation, equivariant decoder with augmentation), then
scores each on the first ``--images`` pairs of the validation split, whole images, as they are
(near-vertical rain) and turned by 90 degrees (horizontal rain): mean Y PSNR / SSIM, outputs
truncated to 8 bits. ``--checkpoint PATH --stages K`` adds a row for a checkpoint with the
official decoder, as it is and made equivariant (:func:`sdsen.models.to_equivariant_decoder`).
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
from targets import default_data_root, means, rain800_val, score_pairs, with_stages

from sdsen.models import to_equivariant_decoder
from sdsen.train import model_from_checkpoint

#: name -> extra ``sdsen train`` arguments
VARIANTS = {
    "official decoder": [],
    "official decoder + rot90/mirror": ["--augment"],
    "equivariant decoder + rot90/mirror": ["--augment", "--model-config", "stages=1",
                                           "decoder=equivariant"],
}


def train_all(out: Path, steps: int, data: Path) -> None:
    """Train every variant in its own process (one torch thread each), all at once."""
    common = ["--preset", "cpu", "--data", str(data), "--val-list", str(data / "val.txt"),
              "--batch-size", "8", "--patch-size", "64", "--lr", "1e-3", "--steps", str(steps),
              "--milestones", str(10 * steps), "--model-config", "stages=1",
              "--val-every", str(10 * steps), "--no-progress", "--no-tensorboard"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "sdsen", "train", *common, *extra,
                               "--run-dir", str(out / f"v{i}")], env=env)
             for i, extra in enumerate(VARIANTS.values())]
    if any(p.wait() for p in procs):
        raise SystemExit("a training run failed (see its output above)")


def scores(model: torch.nn.Module, images: int, root: Path) -> list[tuple[float, float]]:
    """Mean (Y PSNR, Y SSIM) of the last stage: as is, then turned by 90 degrees; input first."""
    val = rain800_val(root)
    out = []
    for turn in (0, 1):
        pairs = ((val.names[i], *(torch.rot90(t, turn, (1, 2)) for t in val[i]))
                 for i in range(images))
        rows = score_pairs(model.eval(), pairs, last_only=True)["rows"]
        psnr, ssim = means(rows), means(rows, "ssim_y")
        out.append(((psnr["input"], ssim["input"]), (list(psnr.values())[-1],
                                                     list(ssim.values())[-1])))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--eval-only", action="store_true", help="score the runs in --out")
    parser.add_argument("--checkpoint", type=Path, help="also score this checkpoint")
    parser.add_argument("--stages", type=int, default=None, help="stages of --checkpoint")
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not args.eval_only:
        train_all(args.out, args.steps, args.data_root / "rain800_train")
    models = {name: model_from_checkpoint(args.out / f"v{i}" / "latest.pt")
              for i, name in enumerate(VARIANTS)}
    if args.checkpoint:
        source = model_from_checkpoint(args.checkpoint)
        if args.stages:
            source = with_stages(source, args.stages)
        models[f"{args.checkpoint} (official decoder)"] = source
        models[f"{args.checkpoint}, decoder made equivariant"] = to_equivariant_decoder(source)
    print(f"First {args.images} validation pairs, whole images, Y PSNR (dB) / SSIM of the last "
          "stage")
    print("\n| model | vertical rain | horizontal rain (turned 90 degrees) |\n|---|---:|---:|")
    for i, (name, model) in enumerate(models.items()):
        (inp, v), (_, h) = scores(model, args.images, args.data_root)
        if i == 0:
            print(f"| rainy input | {inp[0]:.2f} / {inp[1]:.3f} | {inp[0]:.2f} / {inp[1]:.3f} |")
        print(f"| {name} | {v[0]:.2f} / {v[1]:.3f} | {h[0]:.2f} / {h[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
