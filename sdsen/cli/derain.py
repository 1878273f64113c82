"""``sdsen derain``: remove rain from images of any size (tiled), keeping format and size."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ._common import CLIError, add_model_source, load_model_from_args, resolve_cli_device

__all__ = ["add_parser", "cmd_derain", "plan_outputs"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdsen derain``."""
    p = subparsers.add_parser(
        "derain",
        help="derain images with the shipped model (or --checkpoint / --weights)",
        description="Derain images of any size, tile by tile. Outputs keep the input's file "
        "format, size and bit depth (16-bit PNG/TIFF stay 16-bit; a grey photo stays grey, "
        "written as three equal channels; an alpha channel is dropped); "
        "values are rounded to the nearest level, while `sdsen evaluate` scores the "
        "8-bit-truncated output of the published protocol (up to 0.2 dB lower at high PSNR). "
        "Existing files are never replaced without --overwrite.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders of images")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (created), or a file name for a single input image",
    )
    add_model_source(p)
    p.add_argument("--tile", type=int, default=512,
                   help="tile size (default 512; memory grows with its square)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap (default: model's)")
    p.add_argument(
        "--stages",
        type=int,
        default=None,
        metavar="N",
        help="run only the first N self-refining stages (faster; default all; the time and "
        "quality of each N: benchmarks/README.md, Fewer stages)",
    )
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, mps")
    p.add_argument(
        "--engine",
        default="auto",
        help="what runs the network: auto (default: the fastest installed on a CPU, "
        "eager PyTorch on a GPU), openvino (pip install 'sdsen[fast]'), onnxruntime (pip "
        "install 'sdsen[export]'), eager; the compiled engines export the model once (about "
        "a minute) and keep it in ~/.cache/sdsen",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing output files as they are and derain only the others (to continue "
        "an interrupted batch)",
    )
    p.set_defaults(func=cmd_derain)


def _expand(inputs: list[str]) -> list[Path]:
    from ..data import is_image_file, list_images

    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise CLIError(f"no images in folder {p}")
            files.extend(found)
        elif p.is_file():
            if not is_image_file(p):
                raise CLIError(f"{p} is not a supported image file")
            files.append(p)
        else:
            raise CLIError(f"input {p} does not exist")
    return files


def plan_outputs(inputs: list[Path], output: Path) -> list[tuple[Path, Path]]:
    """Pair each input with its output path (same name and extension, in ``output``)."""
    from ..data import is_image_file

    if len(inputs) == 1 and is_image_file(output) and not output.is_dir():
        if output.suffix.lower() != inputs[0].suffix.lower():
            raise CLIError(
                f"output {output} changes the format of {inputs[0]}; keep the extension "
                f"{inputs[0].suffix}"
            )
        return [(inputs[0], output)]
    if output.exists() and not output.is_dir():
        raise CLIError(f"output {output} exists and is not a folder")
    if len(inputs) > 1 and not output.exists() and is_image_file(output):
        raise CLIError(
            f"-o {output} names a file, but there are {len(inputs)} input images; give a folder"
        )
    pairs = [(f, output / f.name) for f in inputs]
    names = [o for _, o in pairs]
    dup = {str(o) for o in names if names.count(o) > 1}
    if dup:
        raise CLIError(f"several inputs map to the same output: {sorted(dup)}")
    return pairs


def check_writable(folders: set[Path]) -> None:
    """Create each output folder and check a file can be written there, before any work.

    Raises
    ------
    CLIError
        Naming the first folder that cannot be created or written to, and the fix.
    """
    import tempfile

    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise CLIError(
                f"cannot write to the output folder {folder} ({exc.strerror or exc}); nothing "
                "was derained. Fix: choose another -o, or make that folder writable"
            ) from None


def _is_grey(img: np.ndarray) -> bool:
    """Whether an ``(H, W, 3)`` image has three equal channels (a grey photo read as RGB)."""
    return bool(np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]))


def cmd_derain(args: argparse.Namespace) -> int:
    """Run ``sdsen derain``; returns the exit code."""
    from tqdm.auto import tqdm

    from ..data import write_image
    from ..data.io import read_image_with_bits
    from ..models.engines import cache_dir, make_engine
    from ..models.inference import derain_image

    files = _expand(args.inputs)
    pairs = plan_outputs(files, Path(args.output))
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            raise CLIError(f"output {dst} is the input itself")
    if args.overwrite and args.skip_existing:
        raise CLIError("--overwrite and --skip-existing exclude each other; pass one")
    existing = [str(d) for _, d in pairs if d.exists()]
    if args.skip_existing:
        pairs = [(src, dst) for src, dst in pairs if not dst.exists()]
    elif existing and not args.overwrite:
        shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise CLIError(
            f"{len(existing)} output file(s) exist: {shown}; pass --overwrite to replace them "
            f"or --skip-existing to keep them"
        )
    check_writable({dst.parent for _, dst in pairs})
    device = resolve_cli_device(args.device)
    model, label = load_model_from_args(args, device)
    n_stages = model.config.stages
    if args.stages is not None and not 1 <= args.stages <= n_stages:
        raise CLIError(f"--stages must be in 1..{n_stages}, got {args.stages}")
    stage = None if args.stages is None else args.stages - 1
    try:
        engine = make_engine(model, args.engine, device)
    except ValueError as exc:
        raise CLIError(f"--engine {args.engine}: {exc}") from None
    engine_name = "eager" if engine is model else engine.backend
    if engine is not model and not engine.is_cached(args.stages or n_stages):
        print(f"sdsen derain: exporting the model for {engine_name} (once for this model; "
              f"cached in {cache_dir()})", file=sys.stderr)
    failed: list[tuple[Path, str]] = []
    pixels, start = 0, time.perf_counter()
    bar = tqdm(pairs, desc="derain", unit="image", disable=len(pairs) < 2 or args.no_progress)
    for src, dst in bar:
        try:
            img, bits = read_image_with_bits(src)
        except (ValueError, OSError) as exc:
            failed.append((src, str(exc)))  # every readable file is still derained
            continue
        bar.set_postfix_str(src.name, refresh=False)
        out = derain_image(
            model, img, tile=args.tile, overlap=args.overlap, device=device, stage=stage,
            engine=engine, progress=not args.no_progress,
        )
        pixels += img.shape[0] * img.shape[1]
        if _is_grey(img):  # the model treats R, G, B apart: keep a grey photo grey
            out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
        if bits == 16 and dst.suffix.lower() in (".png", ".tif", ".tiff"):
            out = np.rint(np.clip(out, 0.0, 1.0) * 65535.0).astype(np.uint16)  # keep 16 bits
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_image(dst, out, overwrite=args.overwrite)
    skipped = f" ({len(existing)} existing kept)" if args.skip_existing and existing else ""
    seconds = time.perf_counter() - start
    rate = f", {seconds / (pixels / 1e6):.1f} s per megapixel" if pixels else ""
    print(f"derained {len(pairs) - len(failed)} image(s) with {label} -> {args.output}{skipped} "
          f"({engine_name} engine, {seconds:.1f} s{rate})")
    if failed:
        lines = "\n".join(f"  {src}: {reason}" for src, reason in failed)
        raise CLIError(
            f"{len(failed)} of {len(pairs)} input(s) could not be read, the others were "
            f"derained:\n{lines}\nFix or remove them and rerun with --skip-existing to derain "
            "only those"
        )
    return 0
