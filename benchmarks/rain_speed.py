"""Speed of ``sdsen.rain`` synthesis on CPU (and CUDA when present).

Prints a table: one 512x512 image per preset, a batch of 50 64x64 patches (the official training
batch), FFT streak blur against direct ``conv2d`` for growing streak lengths, and, when
``sdsen.models`` is importable, the time of one SDSEN training step for scale.

Usage::

    .venv/bin/python benchmarks/rain_speed.py [--threads 2] [--repeats 7] [--no-train-step]

Times are the best (minimum) of ``--repeats`` runs after one warm-up: on a shared machine the
minimum is the least disturbed estimate of the cost; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from sdsen.rain import RainParams, sample_params, streak_kernel, synthesize_batch


def timeit(fn: Callable[[], object], repeats: int, sync: bool = False) -> float:
    """Best (minimum) wall time in seconds of ``fn()`` over ``repeats`` runs after a warm-up."""
    fn()
    ts = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-train-step", action="store_true", help="skip the SDSEN step timing")
    ap.add_argument("--train-batch", type=int, default=5,
                    help="patches in the timed training step (scaled linearly to 50)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"# rain synthesis speed: torch {torch.__version__}, {platform.processor() or 'cpu'}, "
          f"{args.threads} threads, best of {args.repeats}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = []
    for dev in devices:
        sync = dev == "cuda"
        img = torch.rand(1, 3, 512, 512, device=dev)
        for name in ("rain800", "light", "heavy", "heavy-haze", "v1-heavy-haze", "uncalibrated"):
            ps = [sample_params(name, np.random.default_rng(i)) for i in range(args.repeats + 1)]
            it = iter(ps * 2)
            t = timeit(lambda img=img, it=it: synthesize_batch(img, next(it)), args.repeats, sync)
            rows.append((dev, f"single 512x512, preset {name}", t))
        big = RainParams(angle=20, length=60, width=2, density=0.004, layers=3, haze=0.3, seed=1)
        t = timeit(lambda img=img, big=big: synthesize_batch(img, big), args.repeats, sync)
        rows.append((dev, "single 512x512, 3 layers, length 60, haze", t))
        patches = torch.rand(50, 3, 64, 64, device=dev)
        for name in ("mixed", "v1-mixed"):
            gen = torch.Generator().manual_seed(0)
            t = timeit(lambda x=patches, g=gen, n=name: synthesize_batch(x, n, g), args.repeats,
                       sync)
            rows.append((dev, f"batch 50 x 64x64, preset {name} (params sampled)", t))
    print("\n| device | case | time (ms) |\n|---|---|---|")
    for dev, case, t in rows:
        print(f"| {dev} | {case} | {1e3 * t:.1f} |")

    # FFT blur (what synthesize_batch does) against direct conv2d of the impulse field
    print("\n| streak length (px) | FFT synthesis 512x512 (ms) | direct conv2d blur only (ms) |")
    print("|---|---|---|")
    img = torch.rand(1, 3, 512, 512)
    imp = (torch.rand(1, 1, 512, 512) < 0.004).float()
    for length in (5, 15, 30, 60):
        p = RainParams(angle=20, length=length, width=1.5, density=0.004, seed=0)
        t_fft = timeit(lambda p=p: synthesize_batch(img, p), args.repeats)
        k = length + 7 | 1
        kern = streak_kernel(20.0, float(length), 1.5, k)[None]
        t_dir = timeit(lambda kern=kern, k=k: F.conv2d(imp, kern, padding=k // 2), max(1, args.repeats // 2))
        print(f"| {length} | {1e3 * t_fft:.1f} | {1e3 * t_dir:.1f} |")

    if args.no_train_step:
        return
    try:
        from sdsen.models import build_model
    except ImportError:
        print("\n(sdsen.models not importable: no training-step comparison)")
        return
    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    nb = args.train_batch
    x = torch.rand(nb, 3, 64, 64)
    rainy, _, rain = synthesize_batch(x, "mixed", torch.Generator().manual_seed(0))

    def step() -> None:
        opt.zero_grad()
        loss = sum(F.mse_loss(r, rain) for r in model(rainy))
        loss.backward()
        opt.step()

    t_step = timeit(step, 1) * 50 / nb
    t_syn = next(t for d, c, t in rows if d == "cpu" and c.startswith("batch 50"))
    print(f"\nSDSEN (official config) training step, batch 50 x 64x64 on CPU: {t_step:.1f} s "
          f"(measured at batch {nb}, scaled x{50 / nb:g}); rain synthesis of the batch is "
          f"{100 * t_syn / t_step:.2f} % of it.")
    if torch.cuda.is_available():
        model.cuda()
        opt = torch.optim.Adam(model.parameters(), lr=5e-4)
        x = torch.rand(50, 3, 64, 64, device="cuda")
        rainy, _, rain = synthesize_batch(x, "mixed", torch.Generator().manual_seed(0))
        t_step = timeit(step, 5, sync=True)
        t_syn = next(t for d, c, t in rows if d == "cuda" and c.startswith("batch 50"))
        print(f"SDSEN training step, batch 50 x 64x64 on CUDA ({torch.cuda.get_device_name()}): "
              f"{1e3 * t_step:.0f} ms; rain synthesis of the batch is "
              f"{100 * t_syn / t_step:.1f} % of it.")


if __name__ == "__main__":
    main()
