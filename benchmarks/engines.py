"""Inference engines side by side: eager PyTorch, ONNX Runtime and OpenVINO through ``derain_image``.

    python benchmarks/engines.py [--model sdsen-official] [--threads 2] [--reps 3]
        [--small 321x481] [--large 2048] [--large-engines eager openvino] [--no-large]

The small image (default 321 x 481, the Rain100 / BSD size: one 512 tile) runs every engine in
interleaved, rotating repetitions in this process (``_timing.interleaved_times``): medians, the
median per-repetition ratio to eager, and the largest output difference from eager. The large
image (default 2048 x 2048, tiled: 512 tiles, the model's overlap, two passes for image-wide SE
gates) runs once per engine, each in a fresh subprocess that also reports the growth of its peak
resident set size; outputs are compared through files. Export and compile times (a one-time
cost: the graphs are cached) are measured apart, in a fresh cache folder. Images are seeded
uniform noise (the cost does not depend on the content).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import header, interleaved_times, maxrss_mib, median_ratio, run_isolated

from sdsen.models import derain_image
from sdsen.models.engines import available_engines, make_engine
from sdsen.pretrained import load_pretrained


def _image(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)


def large_case(model: str, engine: str, side: int, out: str) -> dict:
    """One tiled run in this (fresh) process: seconds, RSS growth (MiB); output saved to ``out``."""
    net = load_pretrained(model).eval()
    runner = make_engine(net, engine)
    runner_arg = None if runner is net else runner
    derain_image(net, _image(64, 64), engine=runner_arg)  # warm-up: graphs loaded, compiled
    image = _image(side, side)
    before = maxrss_mib()
    t0 = time.perf_counter()
    result = derain_image(net, image, engine=runner_arg)
    seconds = time.perf_counter() - t0
    np.save(out, result)
    return {"seconds": seconds, "rss_mib": maxrss_mib() - before}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sdsen-official")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--small", default="321x481", help="HxW of the small image")
    p.add_argument("--large", type=int, default=2048, help="side of the large image")
    p.add_argument("--large-engines", nargs="+", default=None,
                   help="engines of the large run (default all installed)")
    p.add_argument("--no-large", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    engines = available_engines()[::-1]  # eager first
    print(header(f"inference engines, {args.model}"))
    print(f"# {' '.join(['python', *sys.argv])}")

    net = load_pretrained(args.model).eval()
    runners = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SDSEN_CACHE"] = cache  # the one-time costs, measured from nothing
        for name in engines:
            t0 = time.perf_counter()
            runners[name] = make_engine(net, name)
            if name != "eager":
                runners[name].run_stages(torch.rand(1, 3, 64, 64))
            print(f"# {name}: export + compile {time.perf_counter() - t0:.1f} s (once per model)")
        h, w = (int(v) for v in args.small.split("x"))
        image = _image(h, w)
        outs: dict[str, np.ndarray] = {}

        def call(name: str):
            def run() -> None:
                engine = runners[name]
                outs[name] = derain_image(net, image, engine=None if engine is net else engine)
            return run

        medians, samples = interleaved_times([call(n) for n in engines], args.reps)
        print(f"\n{h} x {w}, {args.reps} interleaved repetitions after a warm-up round:\n")
        print("| engine | median (s) | eager / engine | max abs diff to eager |")
        print("|---|---:|---:|---:|")
        for i, name in enumerate(engines):
            diff = float(np.abs(outs[name] - outs["eager"]).max())
            print(f"| {name} | {medians[i]:.2f} | {median_ratio(samples[0], samples[i]):.2f} "
                  f"| {diff:.1e} |")

        if args.no_large:
            return
        large = args.large_engines or engines
        print(f"\n{args.large} x {args.large}, tiled (512, default overlap, image-wide SE "
              "gates: two passes), one run per engine in a fresh process:\n")
        print("| engine | seconds | s / megapixel | eager / engine | RSS growth (MiB) "
              "| max abs diff to eager |")
        print("|---|---:|---:|---:|---:|---:|")
        results, arrays = {}, {}
        for name in large:
            out = str(Path(cache) / f"{name}.npy")
            results[name] = run_isolated("engines", "large_case", {
                "model": args.model, "engine": name, "side": args.large, "out": out},
                threads=args.threads)
            arrays[name] = np.load(out)
        mp = args.large ** 2 / 1e6
        for name in large:
            r = results[name]
            ratio = results["eager"]["seconds"] / r["seconds"] if "eager" in results else float("nan")
            diff = float(np.abs(arrays[name] - arrays["eager"]).max()) if "eager" in arrays else float("nan")
            print(f"| {name} | {r['seconds']:.1f} | {r['seconds'] / mp:.1f} | {ratio:.2f} "
                  f"| {r['rss_mib']:.0f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
