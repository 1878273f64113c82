"""``sdsen export``: write a model as an ONNX graph (plain ``Conv`` layers, dynamic size)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import CLIError, add_model_source, load_model_from_args

__all__ = ["add_parser", "cmd_export"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdsen export``."""
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX (image in, derained image out)",
        description="Write the model as an ONNX graph: input 'rainy' (B, 3, H, W) float in "
        "[0, 1], output 'derained' of the same shape, any batch, height and width. The group "
        "convolutions become plain Conv nodes with the expanded filter banks "
        "(sdsen.models.to_plain). Needs onnx and onnxscript (pip install 'sdsen[export]'); "
        "run it with onnxruntime. The file is checked against PyTorch on a random image when "
        "onnxruntime is installed.",
    )
    p.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file")
    add_model_source(p)
    p.add_argument("--stages", type=int, default=None,
                   help="run only the first N self-refining stages (faster; default all)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``sdsen export``; returns the exit code."""
    import importlib.util

    import torch

    from ..models.export import DerainGraph, export_onnx, to_plain

    out = Path(args.onnx)
    if out.suffix.lower() != ".onnx":
        raise CLIError(f"--onnx {out}: give a file name ending in .onnx")
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxscript") is None:
        raise CLIError("exporting needs the onnx and onnxscript packages: pip install "
                       "'sdsen[export]' (or pip install onnx onnxscript onnxruntime)")
    model, label = load_model_from_args(args, torch.device("cpu"))
    n = model.config.stages
    if args.stages is not None and not 1 <= args.stages <= n:
        raise CLIError(f"--stages must be in 1..{n}, got {args.stages}")
    export_onnx(model, out, stages=args.stages)
    check = ""
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        x = torch.rand(1, 3, 48, 40)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"rainy": x.numpy()})[0])
        with torch.no_grad():
            ref = DerainGraph(to_plain(model), args.stages)(x)
        check = f"; onnxruntime vs PyTorch on a 48x40 image: max difference {float((got - ref).abs().max()):.1e}"
    print(f"wrote {out} from {label} ({args.stages or n} stages){check}")
    return 0
