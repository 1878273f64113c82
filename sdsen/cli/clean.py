"""``sdsen clean``: delete the training records of a run folder, after asking."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import CLIError

__all__ = ["add_parser", "check_run_dir", "cmd_clean", "run_records"]

_RECORD_GLOBS = ("latest.pt", "step_*.pt", ".*.pt.*.tmp", "events.out.tfevents.*", "metrics.jsonl")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdsen clean``."""
    p = subparsers.add_parser(
        "clean",
        help="delete a run's checkpoints, TensorBoard events and metrics.jsonl",
        description="Delete the training records of a run folder written by `sdsen train` "
        "(checkpoints, TensorBoard events, metrics.jsonl). Asks first unless --yes. Refuses "
        "folders that are not run folders (no config.json + .sdsen-run marker).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--all",
        action="store_true",
        help="also delete config.json, data.json and the marker, and the folder if then empty",
    )
    p.set_defaults(func=cmd_clean)


def check_run_dir(path: str | Path) -> Path:
    """Resolve ``path`` and refuse anything that is not an sdsen run folder."""
    from ..train import RUN_MARKER, is_run_dir

    p = Path(path).expanduser()
    if not p.exists():
        raise CLIError(f"{p} does not exist")
    real = p.resolve()
    if real == Path.cwd().resolve() and is_run_dir(real):
        raise CLIError(f"refusing to clean {real}: it is the current folder; run sdsen clean "
                       "from outside it (e.g. `cd ..`)")
    protected = {Path("/"), Path.home().resolve(), Path.cwd().resolve()}
    protected.add(Path(__file__).resolve().parents[2])  # the source tree / repo root
    if real in protected or real == Path(real.anchor) or (real / ".git").exists():
        raise CLIError(f"refusing to clean {real}: not a run folder")
    if (real / "pyproject.toml").exists():
        raise CLIError(f"refusing to clean {real}: it looks like a project root")
    if not is_run_dir(real):
        raise CLIError(
            f"refusing to clean {real}: not an sdsen run folder (no config.json + {RUN_MARKER} "
            "written by sdsen train)"
        )
    return real


def run_records(run_dir: Path) -> list[Path]:
    """Files of ``run_dir`` that ``sdsen clean`` deletes."""
    found: set[Path] = set()
    for pattern in _RECORD_GLOBS:
        found.update(f for f in run_dir.glob(pattern) if f.is_file() and not f.is_symlink())
    return sorted(found)


def cmd_clean(args: argparse.Namespace) -> int:
    """Run ``sdsen clean``; returns the exit code."""
    from ..train import RUN_MARKER
    from ..train.logs import CONFIG_FILE, DATA_FILE

    run_dir = check_run_dir(args.run_dir)
    files = run_records(run_dir)
    if args.all:
        files += [f for f in (run_dir / CONFIG_FILE, run_dir / DATA_FILE, run_dir / RUN_MARKER)
                  if f.is_file()]
    if not files:
        print(f"nothing to delete in {run_dir}")
        return 0
    size = sum(f.stat().st_size for f in files)
    print(f"{run_dir}: {len(files)} file(s), {size / 1e6:.1f} MB:")
    for f in files[:20]:
        print(f"  {f.name}")
    if len(files) > 20:
        print(f"  ... and {len(files) - 20} more")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CLIError("not deleting without confirmation; pass --yes")
        answer = input("delete them? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted")
            return 1
    for f in files:
        f.unlink()
    if args.all:
        try:
            run_dir.rmdir()
        except OSError:
            pass  # other files left in the folder: keep it
    print(f"deleted {len(files)} file(s) from {run_dir}")
    return 0
