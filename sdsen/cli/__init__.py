"""Command line: ``sdsen`` / ``python -m sdsen``.

Subcommands: ``data`` (synth, prepare), ``train``, ``evaluate``, ``show``, ``derain``,
``clean``. Every error is reported as one line on stderr with a nonzero exit code (set
``SDSEN_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .._version import __version__
from ._common import CLIError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``sdsen`` argument parser with every subcommand registered."""
    from . import clean, derain, evaluate, export, show, train
    from .data import add_parser as add_data_parser

    parser = argparse.ArgumentParser(
        prog="sdsen",
        description="Rotation-equivariant single-image rain removal (SDSEN, ICIP 2019).",
        epilog="Run `sdsen COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"sdsen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_data_parser(sub)
    train.add_parser(sub)
    evaluate.add_parser(sub)
    show.add_parser(sub)
    derain.add_parser(sub)
    export.add_parser(sub)
    clean.add_parser(sub)
    return parser


@contextmanager
def _one_line_warnings(prog: str) -> Iterator[None]:
    """Show each warning raised inside as one line ``PROG: warning: MESSAGE`` on stderr."""

    def show(message: Warning | str, *_: object, **__: object) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on an error (reported as one line on stderr), 2 on a usage error,
        130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if getattr(args, "func", None) is None:
        if args.command is None:
            parser.print_help()
            return 0
        # a command group such as `sdsen data` without its subcommand
        parser.parse_args([args.command, "--help"])
        return 2
    prog = f"sdsen {args.command}"
    try:
        with _one_line_warnings(prog):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BaseException as exc:  # one clear line, no traceback
        if os.environ.get("SDSEN_DEBUG"):
            raise
        msg = str(exc) or type(exc).__name__
        known = (CLIError, ValueError, FileNotFoundError, FileExistsError, RuntimeError, KeyError)
        if not isinstance(exc, known):
            msg = f"{type(exc).__name__}: {msg} (set SDSEN_DEBUG=1 for the traceback)"
        elif isinstance(exc, KeyError):
            msg = msg.strip("'\"")
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 1
