"""Fewer self-refining stages: the time and the quality of ``sdsen derain --stages N``.

    python benchmarks/stages.py [--model sdsen] [--threads 2] [--reps 3] [--size 321x481]

For each N from 1 to the model's stage count: the median time of ``derain_image(stage=N-1)``
on a seeded noise image of ``--size`` (eager PyTorch and the fastest installed engine, all
calls in interleaved repetitions), and the mean scores of stage N over the Rain800 validation
split (46 held-out pairs, Y and RGB protocols, outputs truncated to 8 bits) read from the
model's record ``benchmarks/results/targets/<model>.json`` (written by ``benchmarks/targets.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import header, interleaved_times

from sdsen.models import available_engines, derain_image, make_engine
from sdsen.pretrained import load_pretrained


def stage_scores(record: dict) -> dict[str, dict[str, float]]:
    """Mean ``psnr_y``, ``ssim_y``, ``psnr_rgb`` per stage label of the record's Rain800 part.

    >>> rows = [{"stage": "1", "psnr_y": 20.0, "ssim_y": 0.5, "psnr_rgb": 19.0},
    ...         {"stage": "1", "psnr_y": 22.0, "ssim_y": 0.7, "psnr_rgb": 21.0}]
    >>> stage_scores({"parts": {"rain800": {"rows": rows}}})["1"]["psnr_y"]
    21.0
    """
    by: dict[str, list[dict]] = {}
    for row in record["parts"]["rain800"]["rows"]:
        by.setdefault(row["stage"], []).append(row)
    return {stage: {k: statistics.mean(r[k] for r in rows)
                    for k in ("psnr_y", "ssim_y", "psnr_rgb")} for stage, rows in by.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sdsen")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--size", default="321x481", help="HxW of the timed image")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = json.loads((HERE / "results" / "targets" / f"{args.model}.json").read_text())
    scores = stage_scores(record)
    net = load_pretrained(args.model).eval()
    fast = available_engines()[0]
    engines = {name: make_engine(net, name) for name in dict.fromkeys(("eager", fast))}
    h, w = (int(v) for v in args.size.split("x"))
    image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    n_stages = net.config.stages
    calls = [(n, name) for n in range(1, n_stages + 1) for name in engines]
    medians, _ = interleaved_times(
        [lambda n=n, e=engines[name]: derain_image(net, image, stage=n - 1, engine=e)
         for n, name in calls], args.reps)
    seconds = dict(zip(calls, medians))
    print(header(f"stages of {args.model}"))
    print(f"# {' '.join(['python', *sys.argv])}; scores: {record['command']} ({record['date']})")
    print(f"\n| N (`--stages`) | {' | '.join(f'{e} (s, {h}x{w})' for e in engines)} "
          "| Rain800 val Y PSNR (dB) | Y SSIM | RGB PSNR (dB) |")
    print("|---:|" + "---:|" * (len(engines) + 3))
    inp = scores["input"]
    print(f"| rainy input | {' | '.join('' for _ in engines)} | {inp['psnr_y']:.2f} "
          f"| {inp['ssim_y']:.3f} | {inp['psnr_rgb']:.2f} |")
    for n in range(1, n_stages + 1):
        s = scores.get(str(n))
        cells = ("not recorded",) * 3 if s is None else (
            f"{s['psnr_y']:.2f}", f"{s['ssim_y']:.3f}", f"{s['psnr_rgb']:.2f}")
        print(f"| {n} | {' | '.join(f'{seconds[(n, e)]:.2f}' for e in engines)} "
              f"| {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
