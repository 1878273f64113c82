"""What exact metrics cost: SSIM / PSNR in float64 against a float32 path, and against the model.

``sdsen.metrics`` computes in float64 whatever the input dtype, so that it matches
scikit-image to about 1e-12 (float32 moments drift by up to 1.5e-5 in SSIM). This script
measures the price side by side in one process, on one test-sized image (481 x 321, the size of
Rain100H): the float64 metrics as shipped, the same SSIM map computed in float32, and, for scale,
one forward of the official SDSEN (8 stages) on the same image, which every scored image needs.
Repetitions are interleaved (``_timing.interleaved_times``); the table reports medians and the
ratio of each row to the float32 SSIM.

Usage::

    python benchmarks/metrics.py            # a few seconds of metrics, then one SDSEN forward
    python benchmarks/metrics.py --quick    # fewer repetitions, no model forward
"""

from __future__ import annotations

import argparse

import torch
from _timing import header, interleaved_times, median_ratio  # benchmarks/_timing.py

from sdsen.metrics import _ssim_map, psnr, ssim, ssim_official
from sdsen.models import ModelConfig, build_model

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Print the metrics cost table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions, no model forward")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 321, 481, generator=gen)
    est = (clean + 0.05 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)

    def ssim_float32() -> torch.Tensor:
        return _ssim_map(est, clean).mean(dim=(1, 2, 3))

    rows = {
        "SSIM RGB, float32 moments (reference row)": ssim_float32,
        "SSIM RGB, float64 (sdsen.metrics.ssim)": lambda: ssim(est, clean),
        "SSIM Y, float64": lambda: ssim(est, clean, "y"),
        "ssim_official (zero-padded), float64": lambda: ssim_official(est, clean),
        "PSNR RGB, float64": lambda: psnr(est, clean),
    }
    if not args.quick:
        model = build_model(ModelConfig()).eval()

        def forward() -> None:
            with torch.no_grad():
                model(est)

        rows["official SDSEN forward, 8 stages (for scale)"] = forward
    reps = 3 if args.quick else 7
    medians, samples = interleaved_times(list(rows.values()), reps=reps)
    print(header("sdsen.metrics cost, one 481x321 image"))
    print("| case | median (ms) | / float32 SSIM |\n|---|---:|---:|")
    for (name, _), med, sample in zip(rows.items(), medians, samples, strict=True):
        print(f"| {name} | {med * 1e3:.1f} | {median_ratio(sample, samples[0]):.2f} |")


if __name__ == "__main__":
    main()
