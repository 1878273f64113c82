"""``sdsen data`` subcommands: ``synth`` (write a synthetic dataset) and ``prepare`` (convert).

Wired into the main parser by ``sdsen.cli`` through :func:`add_parser`::

    sdsen data synth DST --n 100 --split test --preset heavy --angle-range -10 10 --seed 0
    sdsen data prepare SRC DST --layout auto
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "cmd_prepare", "cmd_synth"]

_LAYOUT_CHOICES = (
    "auto",
    "canonical",
    "ddn",
    "rain1400",
    "rain12",
    "rain100",
    "side_by_side",
    "rescan",
    "rain800",
)


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``sdsen data synth``; returns the exit code."""
    from sdsen.data import synth_dataset

    out = synth_dataset(
        args.dst,
        n=args.n,
        split=args.split,
        size=None if args.size == 0 else args.size,
        preset=args.preset,
        angle_range=tuple(args.angle_range) if args.angle_range else None,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"wrote {args.n} pairs to {out} (rain/, gt/, manifest.json)")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Run ``sdsen data prepare``; returns the exit code."""
    from sdsen.data.prepare import MANIFEST, prepare

    out = prepare(
        args.src,
        args.dst,
        layout=args.layout,
        order=args.order,
        overwrite=args.overwrite,
        allow_unpaired=args.allow_unpaired,
    )
    n = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["n"]
    print(f"converted {n} pairs from {args.src} to {out} (canonical layout rain/ + gt/)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data synth`` and ``data prepare`` on ``subparsers`` (each sets ``func``).

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="sdsen")
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["data", "synth", "out", "--n", "3", "--angle-range", "-10", "10"])
    >>> args.func.__name__, args.n, args.angle_range
    ('cmd_synth', 3, [-10.0, 10.0])
    """
    data = subparsers.add_parser(
        "data",
        help="write synthetic datasets / convert benchmark folders",
        description="Dataset tools: `synth` writes a reproducible synthetic rain dataset, "
        "`prepare` converts a downloaded benchmark to the canonical layout (rain/X.png + "
        "gt/X.png). See data/README.md.",
    )
    sub = data.add_subparsers(dest="data_command", metavar="{synth,prepare}", required=True)

    synth = sub.add_parser(
        "synth",
        help="write a synthetic rain dataset (canonical layout + manifest.json)",
        description="Add synthetic rain to the built-in photos (scikit-image, offline) and write "
        "rain/NNNN.png, gt/NNNN.png and manifest.json (each pair's rain parameters). Same "
        "arguments and seed give identical files.",
    )
    synth.add_argument("dst", help="destination folder (must be empty or absent)")
    synth.add_argument("--n", type=int, default=100, help="number of pairs (default 100)")
    synth.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        default="test",
        help="built-in photos to use as backgrounds (default test)",
    )
    synth.add_argument(
        "--size",
        type=int,
        default=128,
        help="side of the random square crops; 0 = whole photos (default 128)",
    )
    synth.add_argument("--preset", default="heavy", help="rain preset (default heavy)")
    synth.add_argument(
        "--angle-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="streak angle range in degrees (0 = vertical); MIN = MAX fixes the angle",
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--overwrite", action="store_true", help="replace a non-empty DST")
    synth.set_defaults(func=cmd_synth)

    prep = sub.add_parser(
        "prepare",
        help="convert a paired dataset (Rain100H/L, Rain1400, Rain12, Rain800, ...) to canonical",
        description="Read SRC in any supported layout and write DST/rain/X.png + DST/gt/X.png "
        "(PNG) and manifest.json. Nothing is written to DST unless every pair reads cleanly.",
    )
    prep.add_argument("src", help="source dataset folder")
    prep.add_argument("dst", help="destination folder (must be empty or absent)")
    prep.add_argument(
        "--layout", choices=_LAYOUT_CHOICES, default="auto", help="source layout (default auto)"
    )
    prep.add_argument(
        "--order",
        choices=("BO", "OB", "auto"),
        default=None,
        help="side-by-side half order: BO = clean left, rainy right (default: BO for "
        "side_by_side, auto for rain800)",
    )
    prep.add_argument("--allow-unpaired", action="store_true", help="skip files without a partner")
    prep.add_argument("--overwrite", action="store_true", help="replace a non-empty DST")
    prep.set_defaults(func=cmd_prepare)
