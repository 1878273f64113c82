"""``sdsen show``: static HTML gallery of a results folder (the original explore.sh)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_parser", "cmd_show"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdsen show``."""
    p = subparsers.add_parser(
        "show",
        help="write an HTML gallery of a results folder (rainy | stages | clean)",
        description="Write a static HTML page showing rainy | derained per stage | clean with "
        "their scores, for a folder written by `sdsen evaluate --save-images DIR`. Open it from "
        "disk, or serve it with `python -m http.server` from a folder above it.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    p.add_argument(
        "-o", "--output", default=None, help="HTML file (default RESULTS_DIR/index.html)"
    )
    p.add_argument("--title", default=None)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUTPUT that sdsen show did not write (its own pages always are)",
    )
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    """Run ``sdsen show``; returns the exit code."""
    from ..gallery import write_gallery

    out = write_gallery(args.results_dir, args.output, title=args.title, overwrite=args.overwrite)
    # the server's root must hold both the page and the images it links to
    root = Path(os.path.commonpath([out.parent, Path(args.results_dir).resolve()]))
    print(f"wrote {out}\nopen:  {out.as_uri()}")
    if root in (Path(root.anchor), Path.home()):
        print(f"serve: write the page inside {Path(args.results_dir).resolve()} (-o) to serve "
              "it: page and images share no folder below " + str(root))
    else:
        print(f"serve: python -m http.server --bind 127.0.0.1 -d {root}  "
              f"(then http://localhost:8000/{out.relative_to(root).as_posix()})")
    return 0
