"""Score shipped weights or a training checkpoint on a real-background paired folder.

Per stage, in both protocols (RGB and MATLAB Y, 8-bit outputs), with the identity row (rainy
input vs clean). Default folder: ``../shared/data/raincityscapes_test100`` beside the checkout
(100 Cityscapes street photographs with physically rendered rain and haze; a validation set:
never train on it, never save its images)::

    python benchmarks/real_validation.py --weights sdsen dsen plain
    python benchmarks/real_validation.py --checkpoint runs/x/latest.pt --root DIR
    python benchmarks/real_validation.py --weights sdsen --record benchmarks/README.md
    python benchmarks/real_validation.py --root ../shared/data/rain800_train --marker rain800 \
        --record benchmarks/README.md     # its val.txt pairs only

A folder with a ``val.txt`` (a training folder's held-out split) is scored on the pairs it
names only (``--val-list FILE`` names another list, ``--val-list none`` scores every pair).
``--record FILE`` writes the tables, with the command, date and machine, between the markers
``<!-- real-validation:start -->`` and ``<!-- real-validation:end -->`` of FILE (appended if
absent; ``--marker NAME`` uses ``real-validation-NAME``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- real-validation:start -->", "<!-- real-validation:end -->"


def default_root() -> Path:
    return ROOT.parent / "shared" / "data" / "raincityscapes_test100"


def machine(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def markdown_table(label: str, result) -> str:
    """One markdown table of the per-stage means of an :class:`sdsen.evaluate.EvalResult`."""
    keys = result.metric_keys
    lines = [f"**{label}** ({len(result.names)} images)", "",
             "| stage | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for stage, vals in result.means().items():
        name = "rainy input (identity)" if stage == "input" else f"after stage {stage}"
        lines.append(f"| {name} | " + " | ".join(
            f"{vals[k]:.2f}" if k.startswith("psnr") else f"{vals[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def record(path: Path, body: str, start: str = START, end: str = END) -> None:
    """Put ``body`` between the markers ``start`` and ``end`` of ``path`` (appended if absent)."""
    block = f"{start}\n{body}\n{end}"
    text = path.read_text() if path.exists() else ""
    i, j = text.find(start), text.find(end)
    text = text[:i] + block + text[j + len(end):] if 0 <= i < j else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    from sdsen.cli._common import CLIError, load_model_from_args, resolve_cli_device
    from sdsen.data import PairedImageFolder, read_name_list, split_by_names
    from sdsen.evaluate import evaluate

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--weights", nargs="+", metavar="NAME", default=None,
                     help="shipped model names or weights files (default: sdsen)")
    src.add_argument("--checkpoint", metavar="PATH", help="training checkpoint or run folder")
    ap.add_argument("--root", default=None, help=f"paired folder (default {default_root()})")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: best available)")
    ap.add_argument("--max-images", type=int, default=None,
                    help="score only the first N pairs (default: all)")
    ap.add_argument("--tile", type=int, default=None, help="tiled inference (bounded memory)")
    ap.add_argument("--val-list", metavar="FILE", default=None,
                    help="score only the pairs named in FILE (default: ROOT/val.txt if there "
                         "is one; 'none': every pair)")
    ap.add_argument("--record", metavar="FILE", default=None,
                    help="write the tables into FILE between the real-validation markers")
    ap.add_argument("--marker", default=None,
                    help="with --record: the markers real-validation-MARKER (one block per folder)")
    args = ap.parse_args(argv)

    root = Path(args.root) if args.root else default_root()
    if not root.is_dir():
        print(f"real validation folder {root} not found: nothing to score. Pass --root DIR "
              "(any layout PairedImageFolder reads), or place the project's shared/ folder "
              "beside the checkout.")
        return 0
    data = folder = PairedImageFolder(root)
    names = Path(args.val_list) if args.val_list not in (None, "none") else root / "val.txt"
    if args.val_list != "none" and (args.val_list is not None or names.is_file()):
        data = split_by_names(folder, read_name_list(names))[1]
    device = resolve_cli_device(args.device)
    sources = ([("checkpoint", args.checkpoint)] if args.checkpoint
               else [("weights", w) for w in (args.weights or ["sdsen"])])
    tables = []
    for kind, value in sources:
        ns = argparse.Namespace(weights=value if kind == "weights" else None,
                                checkpoint=value if kind == "checkpoint" else None)
        try:
            model, label = load_model_from_args(ns, device)
        except CLIError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        t0 = time.time()
        result = evaluate(model, data, tile=args.tile, device=device,
                          max_images=args.max_images, progress=False)
        tables.append(markdown_table(f"{label}, {time.time() - t0:.0f} s", result))
        print(tables[-1], flush=True)
    if args.record:
        cmd = "python benchmarks/real_validation.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:]) if a)
        scored = len(data) if args.max_images is None else min(args.max_images, len(data))
        held = f"{names.name} of " if data is not folder else ""
        head = (f"Real-background validation of `{held}{root.name}` ({scored} of its "
                f"{len(data)} pairs), outputs "
                f"clamped and truncated to 8 bits. Command: `{cmd}`; "
                f"{time.strftime('%Y-%m-%d')}; {machine(str(device))}; "
                f"torch {__import__('torch').__version__}.\n")
        tag = f"real-validation-{args.marker}" if args.marker else "real-validation"
        record(Path(args.record), head + "\n" + "\n".join(tables),
               f"<!-- {tag}:start -->", f"<!-- {tag}:end -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
