"""How inference cost grows: time and peak memory against image side and number of stages.

Every point is one untiled :func:`sdsen.models.derain_image` call (the model on the whole image)
in a fresh subprocess, measured by :func:`inference.measure_case`: wall time, process CPU time
and growth of the peak RSS across the call (``ru_maxrss``). The slopes and plots use the CPU
time (one torch thread), which a busy machine disturbs far less than the wall time. Two sweeps:

- **side**: DSEN and the plain CNN (``ModelConfig(group='z2')``) at 128..1024, SDSEN at
  128..512 (square images, batch 1);
- **stages**: SDSEN with 1..8 stages (official otherwise) at 128 x 128.

Slopes are least-squares fits of ``log y`` on ``log x`` over all points of a curve, and over
the last three (the small sizes carry fixed costs: interpreter, per-layer overheads). Expect
about 2 against the side (cost per pixel is constant) and about 1 against the stages (weights
are shared, every stage costs the same). Figures: ``figures/bench_scaling_side.png`` and
``figures/bench_scaling_stages.png`` (log-log), written through :func:`sdsen.viz.save_figure`.

Usage::

    python benchmarks/scaling.py           # ~3 CPU-minutes at 1 thread
    python benchmarks/scaling.py --quick   # small sizes, a smoke test (no figures)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from _timing import header, run_isolated

__all__ = ["fit_slope", "main", "sweep"]

SIDES = {"sdsen": (128, 256, 512), "dsen": (128, 256, 512, 1024), "plain": (128, 256, 512, 1024)}
STAGES = tuple(range(1, 9))


def fit_slope(x: list[float], y: list[float]) -> float:
    """Slope of the least-squares line through ``(log x, log y)``."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def sweep(
    points: list[tuple[str, int, dict | None]], threads: int = 1
) -> list[tuple[str, int, dict | None, dict]]:
    """Measure ``(model, side, overrides)`` points, each in a fresh process."""
    out = []
    for model, side, overrides in points:
        r = run_isolated(
            "inference",
            "measure_case",
            {"model": model, "side": side, "tiled": False, "overrides": overrides},
            threads=threads,
        )
        out.append((model, side, overrides, r))
    return out


def _slopes(x: list[float], y: list[float]) -> str:
    s_all = fit_slope(x, y)
    s_last = fit_slope(x[-3:], y[-3:]) if len(x) > 3 else s_all
    return f"{s_all:.2f} / {s_last:.2f}"


def _plot(curves: dict[str, tuple[list, list, list]], xlabel: str, ref: float, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdsen.viz import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for label, (x, t, m) in curves.items():
        axes[0].loglog(x, t, "o-", label=label)
        axes[1].loglog(x, m, "o-", label=label)
    for ax, ylabel in zip(axes, ("CPU time per image (s)", "peak RSS growth (MiB)"), strict=True):
        x0 = min(min(c[0]) for c in curves.values())
        x1 = max(max(c[0]) for c in curves.values())
        ymid = np.exp(
            np.mean([np.log(c[1 if ylabel.startswith("CPU") else 2][0]) for c in curves.values()])
        )
        ax.loglog([x0, x1], [ymid, ymid * (x1 / x0) ** ref], "k--", lw=0.8, label=f"slope {ref:g}")
        ticks = sorted({v for c in curves.values() for v in c[0]})
        ax.set_xticks(ticks, [str(v) for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", lw=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    print(f"figure: {save_figure(fig, name)[0]}")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Print the tables and fitted slopes; write the figures (not with ``--quick``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no figures")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sides = {k: (32, 64, 96) for k in SIDES} if args.quick else SIDES
    stages = (1, 2, 3) if args.quick else STAGES
    stage_side = 32 if args.quick else 128

    print(header("scaling benchmark"))
    cmd_args = sys.argv[1:] if argv is None else argv
    print(f"command: python benchmarks/scaling.py {' '.join(cmd_args)}".rstrip())

    print("\n## Against the image side (untiled, batch 1)\n")
    print("| model | side | wall (s) | CPU (s) | peak RSS growth (MiB) | CPU ns per pixel |")
    print("|---|---:|---:|---:|---:|---:|")
    side_curves: dict[str, tuple[list, list, list]] = {}
    for model, ss in sides.items():
        res = sweep([(model, s, None) for s in ss], args.threads)
        xs = [s for _, s, _, _ in res]
        ws = [r["time_s"] for *_, r in res]
        ts = [r["cpu_s"] for *_, r in res]
        ms = [max(r["rss_mib"], 1e-3) for *_, r in res]
        for s, w, t, m in zip(xs, ws, ts, ms, strict=True):
            print(
                f"| {model} | {s} | {w:.3f} | {t:.3f} | {m:.0f} | {1e9 * t / s**2:.0f} |",
                flush=True,
            )
        side_curves[model] = (xs, ts, ms)

    print(
        f"\n## Against the number of SDSEN stages (untiled, {stage_side} x {stage_side}, batch 1)\n"
    )
    print("| stages | wall (s) | CPU (s) | peak RSS growth (MiB) |")
    print("|---:|---:|---:|---:|")
    res = sweep([("sdsen", stage_side, {"stages": k}) for k in stages], args.threads)
    sw = [r["time_s"] for *_, r in res]
    st = [r["cpu_s"] for *_, r in res]
    sm = [max(r["rss_mib"], 1e-3) for *_, r in res]
    for k, w, t, m in zip(stages, sw, st, sm, strict=True):
        print(f"| {k} | {w:.3f} | {t:.3f} | {m:.1f} |", flush=True)

    print("\n## Fitted log-log slopes (all points / last three)\n")
    print("| curve | CPU time | memory |")
    print("|---|---:|---:|")
    for model, (xs, ts, ms) in side_curves.items():
        print(f"| {model} vs side | {_slopes(xs, ts)} | {_slopes(xs, ms)} |")
    print(f"| sdsen vs stages | {_slopes(list(stages), st)} | {_slopes(list(stages), sm)} |")

    if not args.quick:
        _plot(side_curves, "image side (px)", 2.0, "bench_scaling_side")
        _plot({"sdsen": (list(stages), st, sm)}, "stages", 1.0, "bench_scaling_stages")
    print(f"\n# done, {header('end').rsplit(', ', 1)[1]}")


if __name__ == "__main__":
    main()
