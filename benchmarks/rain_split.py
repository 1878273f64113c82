r"""Where a model's score on real rain comes from: the smooth part of its rain estimate, or the rest.

The rendered rain of the real-background folder is mostly smooth (haze and veiling light: the
Realism section of ``benchmarks/README.md``), so a model can raise PSNR there by subtracting a
nearly constant layer without removing one streak, and lose PSNR by removing scene detail it
takes for streaks. This splits the last-stage rain estimate ``R̂`` of each model, and the true
rain ``R = O - B`` of each pair, into a smooth part ``S(·)`` (the mean over ``K x K`` pixels,
default 31) and the detail ``D(·) = · - S(·)``, and scores (Y PSNR of 8-bit outputs, as
:func:`sdsen.evaluate.evaluate` does) what removing each part gives:

- ``model``: ``O - R̂``, the model's output;
- ``smooth only``: ``O - S(R̂)``;  ``detail only``: ``O - D(R̂)``;
- ``true smooth + model detail``: ``O - S(R) - D(R̂)``: whether the model's detail estimate
  helps once the smooth rain is exactly right (compare with ``true smooth``: ``O - S(R)``);

the mean absolute value of each part of ``R̂`` and ``R`` (0-1 scale), and the colour of what
is removed: the mean of ``R̂`` and of ``R`` per channel (R, G, B; 0-1 scale, signed). A model
whose ``R̂`` is much heavier in one channel than the true ``R`` tints its outputs the opposite
colour (removing blue leaves them yellow)::

    python benchmarks/rain_split.py --weights sdsen sdsen-official --images 12
    python benchmarks/rain_split.py --weights sdsen sdsen-official --images 12 \
        --record benchmarks/README.md --json benchmarks/results/analyses/rain_split.json

The images are spread evenly over the folder (``--images N``); never train on this folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from real_validation import default_root, machine, record  # benchmarks/ (run from there)

START, END = "<!-- rain-split:start -->", "<!-- rain-split:end -->"
COLUMNS = ("model", "smooth only", "detail only", "true smooth + model detail")


def smooth(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over ``k x k`` pixels (edges: over the pixels inside), ``(3, H, W)`` -> same."""
    return F.avg_pool2d(x[None], k, 1, k // 2, count_include_pad=False)[0]


def split_scores(rainy: torch.Tensor, clean: torch.Tensor, rain_hat: torch.Tensor,
                 k: int) -> dict[str, float]:
    """Y PSNR of each removal of the module docstring, and the parts' mean absolute values.

    ``rainy``, ``clean``, ``rain_hat``: ``(3, H, W)`` in the 0-1 scale.
    """
    from sdsen.metrics import score_image

    rain = rainy - clean
    s_hat, s_true = smooth(rain_hat, k), smooth(rain, k)
    estimates = {
        "input": rainy,
        "model": rainy - rain_hat,
        "smooth only": rainy - s_hat,
        "detail only": rainy - (rain_hat - s_hat),
        "true smooth": rainy - s_true,
        "true smooth + model detail": rainy - s_true - (rain_hat - s_hat),
    }
    out = {name: score_image(est, clean, ("y",))["psnr_y"] for name, est in estimates.items()}
    out |= {"|S(R̂)|": s_hat.abs().mean().item(), "|S(R)|": s_true.abs().mean().item(),
            "|D(R̂)|": (rain_hat - s_hat).abs().mean().item(),
            "|D(R)|": (rain - s_true).abs().mean().item()}
    for c, channel in enumerate("RGB"):
        out[f"mean R̂ {channel}"] = rain_hat[c].mean().item()
        out[f"mean R {channel}"] = rain[c].mean().item()
    return out


def colour_text(m: dict[str, float], which: str) -> str:
    """``"(3.9, 8.4, 16.6)"``: the mean of ``R̂`` (``which="R̂"``) or ``R`` per channel in
    8-bit levels (0-255), from a dict of :func:`split_scores` values (or their means)."""
    return "(" + ", ".join(f"{255 * m[f'mean {which} {c}']:.1f}" for c in "RGB") + ")"


def table(scores: dict[str, list[dict[str, float]]]) -> str:
    """Markdown: one row per model, means over the images."""
    first = next(iter(scores.values()))
    ref = {k: statistics.fmean(r[k] for r in first) for k in ("input", "true smooth", "|S(R)|",
                                                              "|D(R)|")}
    true_colour = colour_text({k: statistics.fmean(r[k] for r in first) for k in first[0]}, "R")
    lines = [(f"Rainy input {ref['input']:.2f} dB; removing only the true smooth rain "
             f"{ref['true smooth']:.2f} dB. True rain: |S(R)| {ref['|S(R)|']:.4f}, |D(R)| "
             f"{ref['|D(R)|']:.4f}, mean per channel (R, G, B) {true_colour} in 8-bit levels."),
             "",
             "| model | " + " | ".join(COLUMNS) + " | \\|S(R̂)\\| | \\|D(R̂)\\| "
             "| mean R̂ (R, G, B), 8-bit |",
             "|---" * (len(COLUMNS) + 4) + "|"]
    for name, rows in scores.items():
        m = {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
        lines.append(f"| `{name}` | " + " | ".join(f"{m[c]:.2f}" for c in COLUMNS)
                     + f" | {m['|S(R̂)|']:.4f} | {m['|D(R̂)|']:.4f} | {colour_text(m, 'R̂')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from sdsen.data import PairedImageFolder
    from sdsen.pretrained import load_pretrained

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", default=["sdsen"], help="shipped model names")
    ap.add_argument("--root", default=None, help=f"paired folder (default {default_root()})")
    ap.add_argument("--images", type=int, default=12, help="pairs, spread evenly (default 12)")
    ap.add_argument("--kernel", type=int, default=31, help="side of the smoothing box (odd)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--record", metavar="FILE", default=None,
                    help="write the table into FILE between the rain-split markers")
    ap.add_argument("--json", metavar="PATH", default=None,
                    help="also write the per-image scores (benchmarks/results.py report reads "
                    "benchmarks/results/analyses/rain_split.json)")
    args = ap.parse_args(argv)
    if args.kernel < 1 or args.kernel % 2 == 0:
        ap.error(f"--kernel must be an odd positive number of pixels, got {args.kernel}")
    root = Path(args.root) if args.root else default_root()
    if not root.is_dir():
        ap.error(f"no paired folder at {root}: pass --root DIR")
    folder = PairedImageFolder(root)
    n = min(args.images, len(folder))
    picks = sorted({round(i * (len(folder) - 1) / max(1, n - 1)) for i in range(n)})
    scores: dict[str, list[dict[str, float]]] = {}
    for name in args.weights:
        model = load_pretrained(name).to(args.device)
        scores[name] = []
        for i in picks:
            rainy, clean = folder[i]
            with torch.inference_mode():
                rain_hat = model(rainy[None].to(args.device))[-1][0].float().cpu()
            scores[name].append(split_scores(rainy, clean, rain_hat, args.kernel))
    command = "python benchmarks/rain_split.py " + " ".join(argv if argv is not None else
                                                             sys.argv[1:])
    body = (f"Rain split on {len(picks)} pairs of `{root.name}` (indices {picks}), smoothing box "
            f"{args.kernel}x{args.kernel}, Y PSNR (dB) of 8-bit outputs. Command: `{command}`; "
            f"{datetime.date.today()}, {machine(args.device)}, torch {torch.__version__}.\n\n{table(scores)}")
    print(body)
    if args.record:
        record(Path(args.record), body, START, END)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "command": command, "date": str(datetime.date.today()),
            "machine": machine(args.device), "torch": torch.__version__, "folder": root.name,
            "indices": picks, "kernel": args.kernel, "per_image": scores}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
