"""Where a group convolution adds its bias: inside ``conv2d``, or afterwards as GrouPy does.

``sdsen.gconv`` adds the bias to the ``conv2d`` output, as GrouPy does, which makes its outputs
bit-equal to GrouPy's (inside ``conv2d`` the sum rounds differently). This script times, side by
side in one process, a ``P4ConvP4(20 -> 10, 5x5, padding 2)`` in eval mode under
``torch.no_grad()`` with its forward monkeypatched to each way of adding the bias, against the
bare ``F.conv2d`` with the bias inside (the baseline of ``benchmarks/gconv.py``):

- ``bias inside conv2d``: the package's forward before it matched GrouPy;
- ``add on the 5-D view``: the package's forward (without autograd): ``conv2d`` without bias,
  then ``add_`` of ``bias.view(1, C, 1, 1, 1)`` on the ``(B, C, G, H, W)`` view of its output;
- ``add on the folded output``: ``add_`` of the bias repeated over the group axis on the
  ``(B, C * G, H, W)`` output (in place without a view, so autograd would allow it too).

Repetitions rotate the order of the variants; the ratio is the median of the per-repetition
ratios to the baseline.

Usage::

    python benchmarks/gconv_bias.py              # 64x64 batch 1 and batch 50, 2 threads
    python benchmarks/gconv_bias.py --threads 1
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _timing import header, interleaved_times, median_ratio  # benchmarks/_timing.py
from inference import _forward_bias_in_conv  # benchmarks/inference.py: the old forward

from sdsen.gconv import GroupConv2d, P4ConvP4

__all__ = ["VARIANTS", "bench", "main"]


def _add_on_folded(layer: GroupConv2d, x: torch.Tensor) -> torch.Tensor:
    w = layer.conv2d_weight()
    y = F.conv2d(layer._as_conv_input(x), w, None, layer.stride, layer.padding, layer.dilation)
    y.add_(layer.bias.repeat_interleave(layer.group.order).view(1, -1, 1, 1))
    return y.unflatten(1, (layer.out_channels, layer.group.order))


#: ``(label, forward)``; ``None`` is the package's own forward.
VARIANTS: list[tuple[str, Callable | None]] = [
    ("bias inside conv2d", _forward_bias_in_conv),
    ("add on the 5-D view (package)", None),
    ("add on the folded output", _add_on_folded),
]


def bench(batch: int, side: int, reps: int) -> list[tuple[str, float, float]]:
    """Rows ``(variant, median ms, ratio to the bare conv2d with its bias inside)``."""
    layer = P4ConvP4(20, 10, kernel_size=5, padding=2).eval()
    x = torch.rand(batch, 20, 4, side, side, generator=torch.Generator().manual_seed(0))
    w, b = (t.detach().clone() for t in layer.conv2d_params())
    folded = x.flatten(1, 2)
    fns = [lambda: F.conv2d(folded, w, b, 1, 2)]
    fns += [(lambda f=f: layer(x) if f is None else f(layer, x)) for _, f in VARIANTS]
    with torch.no_grad():
        reference = layer(x)
        for label, f in VARIANTS:
            if f is not None and f is not _forward_bias_in_conv:
                assert torch.equal(f(layer, x), reference), label  # the same values
        medians, samples = interleaved_times(fns, reps, warmup=2)
    rows = [("bare F.conv2d, bias inside (baseline)", 1e3 * medians[0], 1.0)]
    rows += [(label, 1e3 * m, median_ratio(s, samples[0]))
             for (label, _), m, s in zip(VARIANTS, medians[1:], samples[1:], strict=True)]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(header("gconv bias placement"))
    print("| case | variant | median (ms) | / bare conv2d |")
    print("|---|---|---:|---:|")
    for batch, side, reps in ((1, 64, 301), (50, 64, 11)):
        for label, ms, ratio in bench(batch, side, reps):
            print(f"| {side}x{side} batch {batch} | {label} | {ms:.3f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
