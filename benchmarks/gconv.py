"""Overhead of a group convolution over the bare ``conv2d`` it wraps.

A :class:`~sdsen.gconv.P4ConvP4` layer is (1) an expansion of its filter bank by the group and
(2) one plain ``conv2d``. This script times the layer against ``F.conv2d`` called directly with the
same expanded weight and bias, side by side in one process, and prints the ratio
``layer time / conv2d time`` for

- ``eval``: ``layer.eval()`` under ``torch.no_grad()`` (the expanded filters are cached), against
  ``F.conv2d`` on the same input;
- ``train``: forward + backward in training mode (filters expanded at every call, gradients for the
  input, weight and bias), against ``F.conv2d`` forward + backward with respect to its input,
  weight and bias.

Repetitions are interleaved (layer, conv2d, then conv2d, layer, ...) so that drifts in machine
load hit both sides alike; the table reports the median time of each side and the median of the
per-repetition ratios.

Usage::

    python benchmarks/gconv.py            # full table (a few minutes on 2 CPU cores)
    python benchmarks/gconv.py --quick    # fewer repetitions, a smoke test
    python benchmarks/gconv.py --device cuda
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _timing import cpu_model  # benchmarks/_timing.py (scripts run from benchmarks/)

from sdsen.gconv import P4ConvP4

__all__ = ["CASES", "bench_case", "main"]

#: ``(label, batch, height, width, eval repetitions, train repetitions)``
CASES: list[tuple[str, int, int, int, int, int]] = [
    ("64x64 batch 50", 50, 64, 64, 15, 9),
    ("64x64 batch 1", 1, 64, 64, 201, 101),
    ("256x256 batch 1", 1, 256, 256, 31, 15),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _paired_times(
    layer_fn: Callable[[], object],
    conv_fn: Callable[[], object],
    reps: int,
    device: torch.device,
    warmup: int = 3,
) -> tuple[float, float, float]:
    """Median times of two functions and the median of their per-repetition ratio.

    Repetitions are interleaved, ``layer conv`` then ``conv layer``, so that a drift in machine
    load hits both sides alike; each repetition gives one ratio ``layer / conv``.
    """
    for _ in range(warmup):
        layer_fn()
        conv_fn()
    layer_t: list[float] = []
    conv_t: list[float] = []
    for rep in range(reps):
        pair = [(layer_fn, layer_t), (conv_fn, conv_t)]
        for fn, out in pair if rep % 2 == 0 else pair[::-1]:
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            out.append(time.perf_counter() - t0)
    ratio = statistics.median(a / b for a, b in zip(layer_t, conv_t, strict=True))
    return statistics.median(layer_t), statistics.median(conv_t), ratio


def bench_case(
    batch: int,
    height: int,
    width: int,
    eval_reps: int,
    train_reps: int,
    device: torch.device | str = "cpu",
) -> dict[str, tuple[float, float, float]]:
    """Time P4ConvP4(20 -> 10, 5x5, padding 2) and its bare conv2d on one input size.

    Returns
    -------
    dict
        ``{"eval": (layer_s, conv2d_s, ratio), "train": (layer_s, conv2d_s, ratio)}``: median
        seconds of each side and median of the per-repetition ratios.
    """
    device = torch.device(device)
    layer = P4ConvP4(20, 10, kernel_size=5, padding=2).to(device)
    x = torch.randn(batch, 20, 4, height, width, device=device)
    with torch.no_grad():
        w, b = (t.clone() for t in layer.conv2d_params())
    xf = x.flatten(1, 2).contiguous()

    # eval: cached filters vs conv2d with the same expanded weight
    layer.eval()

    def layer_eval() -> None:
        with torch.no_grad():
            layer(x)

    def conv_eval() -> None:
        with torch.no_grad():
            F.conv2d(xf, w, b, padding=2)

    eval_times = _paired_times(layer_eval, conv_eval, eval_reps, device)

    # train step: forward + backward w.r.t. input and parameters
    layer.train()
    x_leaf = x.clone().requires_grad_()
    xf_leaf = xf.clone().requires_grad_()
    w_leaf = w.clone().requires_grad_()
    b_leaf = b.clone().requires_grad_()
    grad_out = torch.randn(batch, 10, 4, height, width, device=device)
    grad_out_f = grad_out.flatten(1, 2)

    def layer_train() -> None:
        layer.zero_grad(set_to_none=True)
        x_leaf.grad = None
        layer(x_leaf).backward(grad_out)

    def conv_train() -> None:
        for t in (xf_leaf, w_leaf, b_leaf):
            t.grad = None
        F.conv2d(xf_leaf, w_leaf, b_leaf, padding=2).backward(grad_out_f)

    train_times = _paired_times(layer_train, conv_train, train_reps, device)
    return {"eval": eval_times, "train": train_times}


def main(argv: list[str] | None = None) -> None:
    """Print the overhead table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="'cpu' (default) or 'cuda'")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    device = torch.device(args.device)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_model()}, {torch.get_num_threads()} threads"
    )
    print(
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"torch {torch.__version__}, {where}"
    )
    print(
        "| case | eval layer (ms) | eval conv2d (ms) | eval ratio "
        "| train layer (ms) | train conv2d (ms) | train ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, batch, h, w, eval_reps, train_reps in CASES:
        if args.quick:
            eval_reps, train_reps = 3, 3
        r = bench_case(batch, h, w, eval_reps, train_reps, device)
        (le, ce, re), (lt, ct, rt) = r["eval"], r["train"]
        print(
            f"| {label} | {le * 1e3:.2f} | {ce * 1e3:.2f} | {re:.3f} "
            f"| {lt * 1e3:.2f} | {ct * 1e3:.2f} | {rt:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
