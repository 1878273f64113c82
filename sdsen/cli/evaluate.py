"""``sdsen evaluate``: PSNR / SSIM per image and stage on a folder of pairs; table + CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import CLIError, add_model_source, load_model_from_args, resolve_cli_device

__all__ = ["add_parser", "cmd_evaluate"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdsen evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="score a model on paired images (PSNR/SSIM, RGB and Y, per stage)",
        description="Score a model on a folder of (rainy, clean) pairs: per image and per "
        "stage, PSNR and SSIM in the RGB and MATLAB-Y protocols on 8-bit outputs, plus the "
        "identity row (rainy vs clean). Prints the means and writes a CSV. With --save-images "
        "DIR it also writes the derained images per stage; `sdsen show DIR` makes a gallery.",
    )
    add_model_source(p)
    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        help="folder of pairs (any layout PairedImageFolder detects) or 'synthetic' "
        "(the built-in test photo with synthetic rain)",
    )
    p.add_argument("--layout", default="auto", help="folder layout (default auto)")
    p.add_argument("--stages", default="all", choices=["all", "last"])
    p.add_argument("--protocols", default="rgb,y", help="comma-separated subset of rgb,y")
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        help="derain tile by tile with this tile size (bounded memory)",
    )
    p.add_argument("--overlap", type=int, default=None, help="tile overlap (default: model's)")
    p.add_argument(
        "--csv",
        default=None,
        help="CSV output (default DIR/results.csv with --save-images, else eval_results.csv)",
    )
    p.add_argument(
        "--save-images",
        metavar="DIR",
        default=None,
        help="write rainy/, clean/, stage_T/ images, results.csv and summary.json",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --csv file and the files in --save-images DIR",
    )
    p.add_argument("--max-images", type=int, default=None, help="score only the first N pairs")
    p.add_argument(
        "--no-quantize",
        action="store_true",
        help="score float outputs instead of 8-bit-truncated ones",
    )
    p.add_argument("--rain-preset", default="mixed", help="rain preset for DATA_DIR=synthetic")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, mps")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def _dataset(spec: str, layout: str, rain_preset: str):
    from ..data import PairedImageFolder, SyntheticRainDataset

    if spec == "synthetic":
        return SyntheticRainDataset("test", patch_size=None, length=None, preset=rain_preset)
    root = Path(spec)
    if not root.is_dir():
        raise CLIError(f"DATA_DIR {spec!r} is not a folder (or 'synthetic')")
    ds = PairedImageFolder(root, layout=layout)
    if len(ds) == 0:
        raise CLIError(f"no image pairs found in {root} (layout {layout!r})")
    return ds


def _check_csv_path(path: Path, overwrite: bool) -> None:
    """Refuse, before any scoring, a CSV path that is a folder or an existing file."""
    if path.is_dir():
        raise CLIError(f"--csv {path} is a folder; give a file path such as {path / 'scores.csv'}")
    if path.exists() and not overwrite:
        raise CLIError(f"{path} exists; pass --overwrite to replace it, or --csv another file")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``sdsen evaluate``; returns the exit code."""
    from ..evaluate import RESULTS_CSV, evaluate

    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    device = resolve_cli_device(args.device)
    dataset = _dataset(args.data_dir, args.layout, args.rain_preset)
    model, label = load_model_from_args(args, device)
    save = Path(args.save_images) if args.save_images else None
    if save is not None and (save / RESULTS_CSV).exists() and not args.overwrite:
        raise CLIError(f"{save} already holds results; pass --overwrite or choose another DIR")
    csv_path = Path(args.csv) if args.csv else (save / RESULTS_CSV if save else None)
    if csv_path is None:
        csv_path = Path("eval_results.csv")
    csv_in_save = save is not None and csv_path == save / RESULTS_CSV  # evaluate() writes it
    if not csv_in_save:
        _check_csv_path(csv_path, args.overwrite)
    result = evaluate(
        model,
        dataset,
        protocols=protocols,
        stages=args.stages,
        tile=args.tile,
        save_dir=save,
        quantize=not args.no_quantize,
        device=device,
        max_images=args.max_images,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        overlap=args.overlap,
    )
    print(f"model: {label}\ndata:  {args.data_dir}")
    print(result.table())
    if not csv_in_save:
        result.to_csv(csv_path)
    print(f"per-image scores: {csv_path}")
    if save is not None:
        print(f"images: {save}/  (gallery: sdsen show {save})")
    return 0
