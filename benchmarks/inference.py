"""Inference cost of SDSEN, DSEN and the plain CNN on the CPU: time, peak memory, compute floor.

Three tables:

1. **Per image**: one RGB image of ``side x side`` through :func:`sdsen.models.derain_image`,
   *untiled* (``tile=side``: one window, the model on the whole image) and *tiled* (the default
   ``tile=512`` and overlap, two passes for the image-wide SE statistics). Each case runs in a
   fresh subprocess, which reports the wall time of the call and the growth of the process's
   peak RSS across it (``ru_maxrss``; see ``benchmarks/_timing.py``). At sides <= 512 the
   default tile holds the whole image, so tiled = untiled and is not run twice.
2. **Compute floor** (same subprocess, untiled cases): the bare ``F.conv2d`` calls the model
   makes, with the same input shapes and the pre-expanded weights. Every convolution module is
   timed once per repetition and counted as often as the forward calls it (each SDSEN module
   runs once per stage; the links skip stage 0); the ratio is ``model forward / floor``, median
   of the per-repetition ratios, model and floor alternating. The floor counts convolutions
   only (activations, sums, concatenations, SE and the filter cache check are the overhead).
3. **Speedups that keep outputs identical**, side by side in one process (interleaved
   repetitions): the model forward without the eval filter cache (train mode under
   ``no_grad``), with it (eval, ``no_grad``), under ``torch.inference_mode``, plus channels_last
   (a monkeypatched :class:`~sdsen.gconv.GroupConv2d` forward; the package is not changed),
   the bias inside ``conv2d`` (what the package did before it matched GrouPy's bias add; also
   monkeypatched), and ``torch.compile`` with ``--compile`` (then every variant runs with
   ``check_inputs=False``). ``max |diff|`` is against the eval ``no_grad`` output of the last
   stage.

SDSEN costs about 3.8 M multiply-adds per pixel, so the default run measures it at 256 and
512 only; cells not run print ``not run`` (``--full`` runs them all: about 1.5 CPU-hours at
one thread, and about 10 GiB for SDSEN untiled at 2048).

Usage::

    python benchmarks/inference.py            # default cells, ~5 CPU-minutes (1 thread)
    python benchmarks/inference.py --quick    # tiny sizes, a smoke test
    python benchmarks/inference.py --full     # every cell, 256..2048 untiled and tiled
    python benchmarks/inference.py --full --sides 1024 2048 --models sdsen   # some rows
    python benchmarks/inference.py --compile  # add the torch.compile row
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _timing import header, interleaved_times, maxrss_mib, median_ratio, run_isolated
from torch import nn

from sdsen.gconv import GroupConv2d
from sdsen.models import ModelConfig, build_model, derain_image

__all__ = [
    "MODELS",
    "bench_speedups",
    "conv_calls",
    "main",
    "make_model",
    "measure_case",
]

#: name -> ModelConfig of the compared networks (official sizes).
MODELS: dict[str, ModelConfig] = {
    "sdsen": ModelConfig(),
    "dsen": ModelConfig(arch="dsen"),
    "plain": ModelConfig(group="z2"),
}

SIDES = (256, 512, 1024, 2048)

#: (model, side, tiled) cells of the default run; the rest need --full.
DEFAULT_CELLS = {
    ("sdsen", 256, False),
    ("sdsen", 512, False),
    ("dsen", 256, False),
    ("dsen", 512, False),
    ("dsen", 1024, False),
    ("dsen", 2048, False),
    ("dsen", 1024, True),
    ("plain", 256, False),
    ("plain", 512, False),
}
#: cells whose floor ratio is measured in the default run (the floor costs about one forward
#: for DSEN / plain, an eighth of one for SDSEN).
FLOOR_MAX_SIDE = 512


def make_model(name: str, seed: int = 0, overrides: dict | None = None) -> nn.Module:
    """The named model (``overrides``: ModelConfig fields changed), seeded, eval mode."""
    torch.manual_seed(seed)
    cfg = dataclasses.replace(MODELS[name], **(overrides or {}))
    return build_model(cfg).eval()


def conv_calls(model: nn.Module) -> list[tuple[nn.Module, int, int]]:
    """``(module, input channels of its conv2d, calls per forward)`` for every convolution.

    Found with forward hooks on one forward of a 16 x 16 zero image.
    """
    counts: dict[nn.Module, list[int]] = {}

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        x = inp[0]
        cin = x.shape[1] * (x.shape[2] if x.dim() == 5 else 1)
        counts.setdefault(mod, [cin, 0])[1] += 1

    mods = [m for m in model.modules() if isinstance(m, (GroupConv2d, nn.Conv2d))]
    handles = [m.register_forward_hook(hook) for m in mods]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, 16, 16))
    finally:
        for h in handles:
            h.remove()
    return [(m, cin, n) for m, (cin, n) in counts.items()]


def _conv_args(mod: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, tuple, tuple]:
    with torch.no_grad():
        if isinstance(mod, GroupConv2d):
            w, b = mod.conv2d_params()
        else:
            w, b = mod.weight, mod.bias
        return (
            w.detach().clone(),
            None if b is None else b.detach().clone(),
            mod.padding,
            mod.stride,
        )


def measure_case(
    model: str,
    side: int,
    tiled: bool,
    floor_reps: int = 0,
    tile: int = 512,
    seed: int = 0,
    overrides: dict | None = None,
) -> dict:
    """One cell, meant to run in a fresh process (:func:`_timing.run_isolated`).

    Returns ``{"time_s", "cpu_s", "rss_mib", "floor_ratio", "floor_s", "model_s"}``: wall and
    process CPU time of one ``derain_image`` call, growth of the peak RSS across it (MiB), and, with
    ``floor_reps > 0`` (untiled only), the median forward and floor times and ratio.
    """
    net = make_model(model, seed, overrides)
    img = torch.rand(3, side, side, generator=torch.Generator().manual_seed(seed))
    derain_image(net, img[:, :32, :32], tile=32, overlap=0)  # filter caches, lazy initialisation
    # untiled: one window over the whole image (the overlap is then irrelevant)
    kw = {"tile": tile} if tiled else {"tile": side, "overlap": 0}
    base = maxrss_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    derain_image(net, img, **kw)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"time_s": elapsed, "cpu_s": cpu, "rss_mib": maxrss_mib() - base}
    if floor_reps and not tiled:
        calls = conv_calls(net)
        conv_inputs = {}
        args = []
        for mod, cin, n in calls:
            if cin not in conv_inputs:
                conv_inputs[cin] = torch.rand(1, cin, side, side)
            args.append((conv_inputs[cin], *_conv_args(mod), n))
        x = img[None]
        model_t, floor_t = [], []
        for rep in range(floor_reps):
            order = (0, 1) if rep % 2 == 0 else (1, 0)
            for which in order:
                if which == 0:
                    with torch.inference_mode():
                        t0 = time.perf_counter()
                        net(x)
                        model_t.append(time.perf_counter() - t0)
                else:
                    total = 0.0
                    with torch.inference_mode():
                        for xin, w, b, pad, stride, n in args:
                            t0 = time.perf_counter()
                            F.conv2d(xin, w, b, stride, pad)
                            total += n * (time.perf_counter() - t0)
                    floor_t.append(total)
        out.update(
            model_s=statistics.median(model_t),
            floor_s=statistics.median(floor_t),
            floor_ratio=median_ratio(model_t, floor_t),
        )
    return out


# ----------------------------------------------------------------------------- speedups
def _forward_channels_last(self: GroupConv2d, x: torch.Tensor) -> torch.Tensor:
    """``GroupConv2d.forward`` with the folded input and the weight in channels_last."""
    w = self.conv2d_weight()
    x = self._as_conv_input(x).contiguous(memory_format=torch.channels_last)
    w = w.contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x, w, None, self.stride, self.padding, self.dilation)
    y = y.unflatten(1, (self.out_channels, self.group.order))
    # runs under inference_mode only: in place, as GroupConv2d.forward adds the bias there
    return y if self.bias is None else y.add_(self.bias.view(1, -1, 1, 1, 1))


def _forward_bias_in_conv(self: GroupConv2d, x: torch.Tensor) -> torch.Tensor:
    """``GroupConv2d.forward`` with the bias inside ``conv2d`` (the package did this until
    2026-11-26; GrouPy adds it afterwards, which rounds differently)."""
    w, b = self.conv2d_params()
    y = F.conv2d(self._as_conv_input(x), w, b, self.stride, self.padding, self.dilation)
    return y.unflatten(1, (self.out_channels, self.group.order))


def bench_speedups(
    model_name: str, side: int, reps: int, compile_model: bool = False, clock: str = "wall"
) -> list[tuple[str, float, float, float]]:
    """Rows ``(variant, median ms, ratio to eval no_grad, max |diff|)``, interleaved.

    ``clock``: ``'wall'`` (``time.perf_counter``) or ``'cpu'`` (``time.process_time``).
    """
    net = make_model(model_name)
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    original = GroupConv2d.forward

    def nocache() -> torch.Tensor:
        net.train()
        try:
            with torch.no_grad():
                return net(x)[-1]
        finally:
            net.eval()

    def nograd() -> torch.Tensor:
        with torch.no_grad():
            return net(x)[-1]

    def infer() -> torch.Tensor:
        with torch.inference_mode():
            return net(x)[-1]

    def patched(forward: Callable, image: torch.Tensor) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            GroupConv2d.forward = forward
            try:
                with torch.inference_mode():
                    return net(image)[-1]
            finally:
                GroupConv2d.forward = original

        return run

    variants = [
        ("train mode, no_grad (filters expanded every call)", nocache),
        ("eval, no_grad (cached filters)", nograd),
        ("eval, inference_mode", infer),
        ("eval, inference_mode, channels_last", patched(_forward_channels_last, x_cl)),
        ("eval, inference_mode, bias inside conv2d", patched(_forward_bias_in_conv, x)),
    ]
    if compile_model:
        # the input check reads the range to Python floats: a graph break; skip it everywhere
        net.check_inputs = False
        compiled = torch.compile(net)

        def comp() -> torch.Tensor:
            with torch.inference_mode():
                return compiled(x)[-1]

        t0 = time.perf_counter()
        comp()
        print(f"torch.compile: first call (compilation) {time.perf_counter() - t0:.1f} s")
        variants.append(("eval, inference_mode, torch.compile", comp))
    ref = nograd()
    diffs = [float((fn() - ref).abs().max()) for _, fn in variants]
    timer = time.process_time if clock == "cpu" else time.perf_counter
    medians, samples = interleaved_times([fn for _, fn in variants], reps, clock=timer)
    base = samples[1]
    return [
        (label, 1e3 * med, median_ratio(s, base), d)
        for (label, _), med, s, d in zip(variants, medians, samples, diffs, strict=True)
    ]


# ----------------------------------------------------------------------------- main
def _fmt_cell(r: dict | None) -> tuple[str, str]:
    if r is None:
        return "not run", "not run"
    return f"{r['time_s']:.2f}", f"{r['rss_mib']:.0f}"


def main(argv: list[str] | None = None) -> None:
    """Print the tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--full", action="store_true", help="run every cell (hours at 1 thread)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--sides", type=int, nargs="+", default=None, help=f"image sides (default {SIDES})"
    )
    parser.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=None, help="models (default all)"
    )
    parser.add_argument(
        "--speedups-only", action="store_true", help="only the speedup table (no per-image cells)"
    )
    parser.add_argument(
        "--cells-only", action="store_true", help="only the per-image table (no speedup table)"
    )
    parser.add_argument(
        "--floor-max", type=int, default=None, help="largest side whose conv2d floor is timed"
    )
    parser.add_argument(
        "--untiled-only", action="store_true", help="skip the tiled cells (a floor-only rerun)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the speedup table")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="clock of the speedup table"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sides: tuple[int, ...] = tuple(args.sides or ((64, 128) if args.quick else SIDES))
    tile = 112 if args.quick else 512
    floor_max = 128 if args.quick else (max(SIDES) if args.full else FLOOR_MAX_SIDE)
    if args.floor_max is not None:
        floor_max = args.floor_max

    print(header("inference benchmark"))
    cmd_args = sys.argv[1:] if argv is None else argv
    print(f"command: python benchmarks/inference.py {' '.join(cmd_args)}".rstrip())
    if not args.speedups_only:
        _cells(args, sides, tile, floor_max)
    if not args.cells_only:
        _speedups(args)
    print(f"\n# done, load average {header('end').rsplit('load average ', 1)[1]}")


def _cells(args: argparse.Namespace, sides: tuple[int, ...], tile: int, floor_max: int) -> None:
    print(
        f"\n## Per image (derain_image; untiled = tile {'side'}, tiled = tile {tile}, default "
        "overlap); seconds and peak-RSS growth (MiB), fresh process per cell\n"
    )
    print(
        "| model | side | untiled (s) | untiled RSS (MiB) | tiled (s) | tiled RSS (MiB) "
        "| forward (s) | conv2d floor (s) | forward / floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    results: dict[tuple[str, int, bool], dict] = {}
    for name in args.models or MODELS:
        for side in sides:
            row: dict[bool, dict | None] = {}
            for tiled in (False, True):
                if tiled and side <= tile:
                    row[tiled] = row[False]  # one tile: the same call
                    continue
                run = args.quick or args.full or (name, side, tiled) in DEFAULT_CELLS
                run = run and not (tiled and args.untiled_only)
                if not run:
                    row[tiled] = None
                    continue
                reps = 0
                if not tiled and side <= floor_max:
                    reps = 3 if (name != "sdsen" and side <= 256) or args.quick else 1
                r = run_isolated(
                    "inference",
                    "measure_case",
                    {"model": name, "side": side, "tiled": tiled, "floor_reps": reps, "tile": tile},
                    threads=args.threads,
                )
                row[tiled] = results[(name, side, tiled)] = r
            (ut, um), (tt, tm) = _fmt_cell(row[False]), _fmt_cell(row[True])
            if side <= tile and row[False] is not None:
                tt, tm = f"= untiled ({ut})", f"= untiled ({um})"
            u = row[False] or {}
            if "floor_ratio" in u:
                fl = f"{u['model_s']:.2f} | {u['floor_s']:.2f} | {u['floor_ratio']:.2f}"
            else:
                fl = "not run | not run | not run"
            print(f"| {name} | {side} | {ut} | {um} | {tt} | {tm} | {fl} |", flush=True)


def _speedups(args: argparse.Namespace) -> None:
    print(
        "\n## Speedups keeping the output (side by side, interleaved repetitions, "
        f"{args.clock} clock)\n"
    )
    cases = (
        [("dsen", 128, 3)] if args.quick else [("sdsen", 128, args.reps), ("dsen", 512, args.reps)]
    )
    print("| model | side | variant | median (ms) | / eval no_grad | max abs diff |")
    print("|---|---:|---|---:|---:|---:|")
    for name, side, reps in cases:
        for label, ms, ratio, diff in bench_speedups(name, side, reps, args.compile, args.clock):
            print(
                f"| {name} | {side} | {label} | {ms:.0f} | {ratio:.3f} | {diff:.1e} |", flush=True
            )


if __name__ == "__main__":
    main()
