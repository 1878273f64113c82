"""Inference engines side by side: eager PyTorch, ONNX Runtime and OpenVINO through ``derain_image``.

    python benchmarks/engines.py [--model sdsen-official] [--threads 2] [--reps 3]
        [--small 321x481] [--large 2048 ...] [--large-engines eager openvino] [--no-small]
        [--no-large]

The small image (default 321 x 481, the Rain100 / BSD size: one 512 tile) runs every engine in
interleaved, rotating repetitions in this process (``_timing.interleaved_times``): medians, the
median per-repetition ratio to eager, and the largest output difference from eager. The large
image (default 2048 x 2048, tiled: 512 tiles, the model's overlap, two passes for image-wide SE
gates) runs once per engine, each in a fresh subprocess that also reports how far its peak
resident set size rose above the size before the call (``VmHWM`` after resetting it through
``/proc/self/clear_refs``; Linux); outputs are compared through files. Export and compile times (a one-time
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
from _timing import header, interleaved_times, median_ratio, run_isolated

from sdsen.models import derain_image
from sdsen.models.engines import available_engines, make_engine
from sdsen.pretrained import load_pretrained


def _image(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)


def _rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, MiB, from ``/proc/self/status``.

    Not ``getrusage``: a child's ``ru_maxrss`` starts at its parent's peak at the fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def large_case(model: str, engine: str, side: int, out: str) -> dict:
    """One tiled run in this (fresh) process: seconds, peak RSS growth over the RSS before the
    call (MiB, image included); output saved to ``out``."""
    net = load_pretrained(model).eval()
    runner = make_engine(net, engine)
    derain_image(net, _image(64, 64), engine=runner)  # warm-up: graphs loaded, compiled
    image = _image(side, side)
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from the current RSS
    before = _rss_mib("VmRSS")
    t0 = time.perf_counter()
    result = derain_image(net, image, engine=runner)
    seconds = time.perf_counter() - t0
    np.save(out, result)
    return {"seconds": seconds, "rss_mib": _rss_mib("VmHWM") - before}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sdsen-official")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--small", default="321x481", help="HxW of the small image")
    p.add_argument("--large", type=int, nargs="+", default=[2048],
                   help="sides of the large images")
    p.add_argument("--large-engines", nargs="+", default=None,
                   help="engines of the large run (default all installed)")
    p.add_argument("--no-large", action="store_true")
    p.add_argument("--no-small", action="store_true")
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
        if not args.no_small:
            _small(net, runners, engines, args)
        if not args.no_large:
            for side in args.large:
                _large(args.model, args.large_engines or engines, side, args.threads, cache)


def _small(net: torch.nn.Module, runners: dict, engines: list[str],
           args: argparse.Namespace) -> None:
    h, w = (int(v) for v in args.small.split("x"))
    image = _image(h, w)
    outs: dict[str, np.ndarray] = {}

    def call(name: str):
        def run() -> None:
            outs[name] = derain_image(net, image, engine=runners[name])
        return run

    medians, samples = interleaved_times([call(n) for n in engines], args.reps)
    print(f"\n{h} x {w}, {args.reps} interleaved repetitions after a warm-up round:\n")
    print("| engine | median (s) | eager / engine | max abs diff to eager |")
    print("|---|---:|---:|---:|")
    for i, name in enumerate(engines):
        diff = float(np.abs(outs[name] - outs["eager"]).max())
        print(f"| {name} | {medians[i]:.2f} | {median_ratio(samples[0], samples[i]):.2f} "
              f"| {diff:.1e} |")


def _large(model: str, engines: list[str], side: int, threads: int, cache: str) -> None:
    print(f"\n{side} x {side}, tiled (512, default overlap, image-wide SE gates: two passes), "
          "one run per engine in a fresh process:\n")
    print("| engine | seconds | s / megapixel | eager / engine | peak RSS growth (MiB) "
          "| max abs diff to eager |")
    print("|---|---:|---:|---:|---:|---:|")
    results, arrays = {}, {}
    for name in engines:
        out = str(Path(cache) / f"{name}.npy")
        results[name] = run_isolated("engines", "large_case", {
            "model": model, "engine": name, "side": side, "out": out}, threads=threads)
        arrays[name] = np.load(out)
    for name in engines:
        r = results[name]
        ratio = results["eager"]["seconds"] / r["seconds"] if "eager" in results else float("nan")
        diff = float(np.abs(arrays[name] - arrays["eager"]).max()) if "eager" in arrays else float("nan")
        print(f"| {name} | {r['seconds']:.1f} | {r['seconds'] / (side * side / 1e6):.1f} "
              f"| {ratio:.2f} | {r['rss_mib']:.0f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
