"""``sdsen train``: train DSEN / SDSEN on synthetic rain or a paired folder.

Examples::

    sdsen train --preset quick --data synthetic --run-dir runs/quick
    sdsen train --preset cpu --data synthetic --run-dir runs/cpu --model-config channels=10
    sdsen train --run-dir runs/cpu --resume --steps 3000          # continue / extend a run
    sdsen train --preset official --data synthetic --run-dir runs/official --device cuda \\
        --max-minutes 8          # one chunk; the same command with --resume runs the next
    sdsen train --preset cpu --init-weights sdsen --run-dir runs/ft  # fine-tune shipped weights
    sdsen train --preset official --data data/Rain100H/train --val-data data/Rain100H/test \\
        --run-dir runs/rain100h
    sdsen train --preset cpu --data ../shared/data/rain800_train --run-dir runs/rain800 \\
        --augment --synthetic-mix 0.25 --rain-angles -90 90 --val-crop 256
        # side-by-side pairs; the pairs named in the folder's val.txt are held out and validated
    torchrun --nproc_per_node=4 -m sdsen train --preset official --data synthetic --run-dir runs/ddp
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

from ._common import CLIError, parse_kv

__all__ = ["add_parser", "build_train_data", "build_val_data", "cmd_train"]

DATA_DEFAULTS: dict[str, Any] = {
    "data": "synthetic", "rain_preset": "mixed", "layout": "auto", "val_data": None,
    "val_list": None,
}
#: TrainConfig fields a resumed run may change without ``--change-recipe``: how long it runs,
#: how often it logs, validates and saves, and where it runs (not what it learns).
RUN_FIELDS = frozenset({
    "steps", "ckpt_every", "keep_every", "log_every", "log_images_every", "val_every",
    "val_images", "device", "num_workers", "tensorboard", "compile",
})
#: A file of this name in a ``--data`` folder is its validation split (``--val-list``).
VAL_LIST_FILE = "val.txt"

# CLI option -> TrainConfig field (options default to None: only given ones override)
_OVERRIDES = {
    "steps": "steps",
    "batch_size": "batch_size",
    "patch_size": "patch_size",
    "lr": "lr",
    "seed": "seed",
    "device": "device",
    "amp": "amp",
    "num_workers": "num_workers",
    "val_every": "val_every",
    "ckpt_every": "ckpt_every",
    "grad_clip": "grad_clip",
    "val_images": "val_images",
    "init_weights": "init_weights",
    "synthetic_mix": "synthetic_mix",
    "clean_mix": "clean_mix",
    "rain_angles": "rain_angles",
    "stage_schedule": "stage_schedule",
    "val_crop": "val_crop",
    "milestones": "milestones",
    "stage_warmup": "stage_warmup",
    "skip_spikes": "skip_spikes",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdsen train``."""
    p = subparsers.add_parser(
        "train",
        help="train a model (presets official / quick / cpu), resumable, DDP under torchrun",
        description="Train DSEN / SDSEN with the official loss (sum over stages of MSE on the "
        "rain layer). Writes config.json, data.json, metrics.jsonl, TensorBoard events and "
        "checkpoints (latest.pt, step_N.pt) to --run-dir. Under `torchrun --nproc_per_node=K -m sdsen "
        "train ...` it runs DistributedDataParallel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1],
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=["official", "quick", "cpu"],
        help="training preset (default quick; on --resume the run's saved config)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="'synthetic' (default: rain added on the fly to the built-in photos) or a folder "
        "of pairs (any layout sdsen.data.PairedImageFolder detects); on --resume the run's",
    )
    p.add_argument(
        "--val-data",
        default=None,
        help="validation pairs folder, 'synthetic' or 'none' (default: synthetic "
        "crops for --data synthetic, none for a folder; on --resume the run's)",
    )
    p.add_argument(
        "--val-list",
        default=None,
        metavar="FILE",
        help="text file naming the pairs of --data to hold out (one per line): never trained "
        f"on, and validated on unless --val-data is given. Default: {VAL_LIST_FILE} in the "
        "--data folder if there is one ('none': train on every pair)",
    )
    p.add_argument(
        "--layout", default=None, help="folder layout of --data / --val-data (default auto)"
    )
    p.add_argument(
        "--rain-preset",
        default=None,
        help="rain preset of synthetic data (sdsen.rain.PRESETS; default mixed; on --resume "
        "the run's, another one only with --change-recipe)",
    )
    p.add_argument("--run-dir", default=None, help="run folder (default runs/PRESET)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir from its latest.pt"
    )
    p.add_argument(
        "--change-recipe",
        action="store_true",
        help="with --resume: allow changing recipe options (learning rate, batch, data mix, "
        "stage schedule, ...); the change is recorded in the run's metrics.jsonl",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="stop after M minutes with a checkpoint; run again with --resume to continue "
        "exactly (training in chunks, e.g. on a time-limited GPU)",
    )
    p.add_argument(
        "--model-config",
        nargs="*",
        metavar="KEY=VALUE",
        default=None,
        help="ModelConfig fields, e.g. channels=10 stages=8 group=p4m",
    )
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--patch-size", type=int, default=None, help="training patch side")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    p.add_argument(
        "--milestones", type=int, nargs="+", default=None, metavar="STEP",
        help="steps at which the learning rate is multiplied by 0.1 (default: the preset's, "
        "scaled to --steps)",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--amp", default=None, choices=["auto", "bf16", "fp16", "off"])
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--val-every", type=int, default=None)
    p.add_argument("--ckpt-every", type=int, default=None)
    p.add_argument("--val-images", type=int, default=None, help="images per validation")
    p.add_argument(
        "--grad-clip",
        type=float,
        default=None,
        metavar="NORM",
        help="clip the global gradient norm (the quick and cpu presets use 1; 0 turns it off)",
    )
    p.add_argument(
        "--init-weights",
        default=None,
        metavar="NAME_OR_PATH",
        help="fine-tune: start a new run from shipped weights (e.g. sdsen), a weights file or "
        "a checkpoint; the model config defaults to theirs",
    )
    p.add_argument(
        "--augment", action="store_true", default=None,
        help="folder data: random rot90 / mirror of each patch (rain at every orientation)",
    )
    p.add_argument(
        "--synthetic-mix", type=float, default=None, metavar="SHARE",
        help="folder data: share of patches with sdsen.rain rain drawn over the clean patch",
    )
    p.add_argument(
        "--clean-mix", type=float, default=None, metavar="SHARE",
        help="folder data: share of patches with no rain (teaches leaving clean images alone)",
    )
    p.add_argument(
        "--rain-angles", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
        help="streak angles of the synthetic rain in degrees (default: the rain preset's)",
    )
    p.add_argument(
        "--stage-schedule", default=None, metavar="STEP:N,...",
        help="train the first N stages from STEP on, e.g. 0:1,3000:2,5000:8 (default: all "
        "stages at every step)",
    )
    p.add_argument(
        "--stage-warmup", type=int, default=None, metavar="STEPS",
        help="ramp the learning rate up over STEPS steps after the stage schedule adds stages",
    )
    p.add_argument(
        "--skip-spikes", type=float, default=None, metavar="FACTOR",
        help="skip the update of a step whose gradient norm exceeds FACTOR times the median "
        "of the last 200 (e.g. 10)",
    )
    p.add_argument(
        "--zero-links", action="store_true", default=None,
        help="start the link convolutions at zero weight (with --stage-schedule: later stages "
        "start as the trained first stage)",
    )
    p.add_argument(
        "--val-crop", type=int, default=None, metavar="SIDE",
        help="validate on the central SIDE x SIDE crop of each image (default: whole images)",
    )
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def build_train_data(
    spec: str,
    cfg: Any,
    device: Any,
    rain_preset: str = "mixed",
    layout: str = "auto",
    val_list: str | None = None,
) -> Any:
    """Training data for ``--data``: a dataset of patches or a stream of device batches.

    ``'synthetic'`` gives :class:`sdsen.data.DeviceRainBatches` on CUDA (rain synthesised on the
    GPU, the next batch made while the current step runs; per-process batch and seed under DDP)
    and :class:`sdsen.data.SyntheticRainDataset` elsewhere; a folder gives
    :class:`sdsen.data.RandomPatchDataset` of its pairs, less those named in ``val_list``,
    with the recipe's augmentation and rain mix (``cfg.augment``, ``cfg.synthetic_mix``,
    ``cfg.clean_mix``, ``cfg.rain_angles``).
    """
    from ..data import (
        DeviceRainBatches,
        RandomPatchDataset,
        SyntheticRainDataset,
    )

    rank, world = _rank()
    length = max(1000, cfg.steps * cfg.batch_size)
    if spec == "synthetic":
        if device.type == "cuda":
            return DeviceRainBatches(
                "train",
                patch_size=cfg.patch_size,
                batch_size=max(1, cfg.batch_size // world),
                preset=rain_preset,
                device=device,
                seed=cfg.seed * 1009 + rank,
                prefetch=True,
            )
        return SyntheticRainDataset(
            "train", patch_size=cfg.patch_size, length=length, preset=rain_preset, seed=cfg.seed
        )
    folder = _pairs_folder(
        spec, layout, "--data must be 'synthetic' or an existing folder of pairs"
    )
    if val_list is not None:
        folder = _split(folder, val_list)[0]
    return RandomPatchDataset(
        folder,
        patch_size=cfg.patch_size,
        length=length,
        seed=cfg.seed,
        augment=cfg.augment,
        synthetic_mix=cfg.synthetic_mix,
        clean_mix=cfg.clean_mix,
        rain_preset=rain_preset,
        rain_angles=cfg.rain_angles,
    )


def _split(folder: Any, val_list: str) -> tuple[Any, Any]:
    """``folder`` split by the names in ``val_list`` into (training, held-out) pairs."""
    from ..data import read_name_list, split_by_names

    try:
        return split_by_names(folder, read_name_list(val_list))
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(f"--val-list: {exc}") from None


def _pairs_folder(spec: str, layout: str, what: str) -> Any:
    """The non-empty :class:`~sdsen.data.PairedImageFolder` at ``spec``, or a CLIError."""
    from ..data import PairedImageFolder

    root = Path(spec)
    if not root.is_dir():
        raise CLIError(f"{what}, got {spec!r}")
    folder = PairedImageFolder(root, layout=layout)
    if len(folder) == 0:
        raise CLIError(f"no image pairs found in {root} (layout {layout!r})")
    return folder


def build_val_data(
    spec: str | None,
    train_spec: str,
    cfg: Any,
    rain_preset: str = "mixed",
    layout: str = "auto",
    val_list: str | None = None,
) -> Any:
    """Validation pairs for ``--val-data`` (None: no validation).

    Left out, it is synthetic crops for synthetic training data, the held-out pairs of
    ``val_list`` for a folder with one, else none. ``cfg.val_crop`` crops folder pairs to
    their centre.
    """
    from ..data import CenterCropPairs, SyntheticRainDataset

    if spec is None and val_list is not None and train_spec != "synthetic" and cfg.val_every:
        held_out = _split(_pairs_folder(train_spec, layout, "--data must be a folder"),
                          val_list)[1]
        return held_out if cfg.val_crop is None else CenterCropPairs(held_out, cfg.val_crop)
    if spec is None:
        spec = "synthetic" if train_spec == "synthetic" else "none"
    if spec == "none" or not cfg.val_every:
        return None
    if spec == "synthetic":
        return SyntheticRainDataset(
            "val",
            patch_size=128,
            length=cfg.val_images or 4,
            preset=rain_preset,
            seed=cfg.seed + 1,
            crops="center",
        )
    folder = _pairs_folder(spec, layout, "--val-data must be 'synthetic', 'none' or a folder")
    return folder if cfg.val_crop is None else CenterCropPairs(folder, cfg.val_crop)


def _data_spec(
    args: argparse.Namespace, run_dir: Path, resuming: bool
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``--data``, ``--val-data``, ``--layout``, ``--rain-preset``: given, the run's, or defaults;
    and the changes made on resume (``{key: [old, new]}``).

    A resumed run continues on the data it was started on (``run_dir/data.json``, written by
    every ``sdsen train`` call): options left out are taken from there, and one that differs
    from it is refused, since batch ``k`` of other data is not batch ``k`` of the run (the
    run's folder of pairs, if it has moved, may be given at its new place). The rain preset of
    the synthetic share is a recipe choice: with ``--change-recipe`` it may change.
    """
    from ..train.logs import DATA_FILE

    given = {k: getattr(args, k) for k in DATA_DEFAULTS if getattr(args, k) is not None}
    given = {k: str(Path(v).resolve()) if _is_folder_option(k, v) else v
             for k, v in given.items()}
    if given.get("val_list") == "none":
        given["val_list"] = None
    elif given.get("val_list") is not None:
        given["val_list"] = str(Path(given["val_list"]).resolve())
    saved_path = run_dir / DATA_FILE
    if not (resuming and saved_path.is_file()):
        spec = {**DATA_DEFAULTS, **given}
        if "val_list" not in given:
            spec["val_list"] = _default_val_list(spec["data"])
        return spec, {}
    saved = json.loads(saved_path.read_text())
    changes: dict[str, list[Any]] = {}
    for key, value in given.items():
        if key not in saved or saved[key] == value:
            continue
        if key == "rain_preset" and args.change_recipe:
            changes[key] = [saved[key], value]
            continue
        moved = (_is_folder_option(key, value) or key == "val_list") and _is_moved_folder(
            saved.get(key))
        if not moved:  # a moved folder may be given
            flag = "--" + key.replace("_", "-")
            theirs = "default (option left out)" if saved[key] is None else saved[key]
            fix = (" Pass --change-recipe to change it on purpose (recorded in metrics.jsonl),"
                   if key == "rain_preset" else "")
            raise CLIError(
                f"{flag} {value} differs from the run's {theirs} ({saved_path}): a resumed "
                f"run goes on with its own data.{fix} Leave {flag} out, or start a new --run-dir"
            )
    return {**DATA_DEFAULTS, **saved, **given}, changes


def _default_val_list(data: str) -> str | None:
    """``DATA/val.txt`` when the ``--data`` folder holds one (its held-out split), else None."""
    if data == "synthetic":
        return None
    path = Path(data) / VAL_LIST_FILE
    return str(path.resolve()) if path.is_file() else None


def _is_folder_option(key: str, value: str) -> bool:
    """``--data`` / ``--val-data`` naming a folder (not 'synthetic' or 'none')."""
    return key in ("data", "val_data") and value not in ("synthetic", "none") and Path(
        value).is_dir()


def _is_moved_folder(saved: Any) -> bool:
    """A run's saved ``--data`` / ``--val-data`` folder or ``--val-list`` file that no longer
    exists (not 'synthetic', 'none' or left out)."""
    return isinstance(saved, str) and saved not in ("synthetic", "none") and not Path(
        saved).exists()


def _train_config(args: argparse.Namespace, run_dir: Path, resuming: bool) -> Any:
    from ..train import TrainConfig

    overrides = {
        field: getattr(args, opt)
        for opt, field in _OVERRIDES.items()
        if getattr(args, opt) is not None
    }
    if overrides.get("grad_clip") == 0:
        overrides["grad_clip"] = None
    if args.augment:
        overrides["augment"] = True
    if args.zero_links:
        overrides["zero_links"] = True
    if "stage_schedule" in overrides:
        overrides["stage_schedule"] = _parse_schedule(overrides["stage_schedule"])
    if args.compile:
        overrides["compile"] = True
    if args.no_tensorboard:
        overrides["tensorboard"] = False
    saved = run_dir / "config.json"
    try:
        if resuming and saved.is_file():
            base = TrainConfig.from_dict(json.loads(saved.read_text())["train"])
            _check_recipe_unchanged(base, args.preset, overrides, args.change_recipe, saved)
            return base.replace(**overrides)
        return TrainConfig.preset(args.preset or "quick", **overrides)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def _steps_done(run_dir: Path) -> int:
    """Steps in the run's ``latest.pt`` (0 without one)."""
    from ..train import LATEST, load_checkpoint

    latest = run_dir / LATEST
    return int(load_checkpoint(latest)["step"]) if latest.is_file() else 0


def _check_recipe_unchanged(
    base: Any, preset: str | None, overrides: dict[str, Any], allowed: bool, saved: Path
) -> None:
    """Refuse a resume that would silently make the run another run.

    The fields of :data:`RUN_FIELDS` (length, logging, saving, device) may change on resume;
    any other field only with ``--change-recipe`` (recorded as a ``resume`` line of
    ``metrics.jsonl``). Another ``--preset`` is refused: its values would replace the run's.
    """
    if preset is not None and preset != base.name:
        raise CLIError(
            f"--preset {preset} differs from the run's {base.name} preset ({saved}): a resumed "
            "run keeps its recipe. Leave --preset out, or start a new --run-dir"
        )
    done = _steps_done(saved.parent)
    if "steps" in overrides and overrides["steps"] <= done:
        raise CLIError(f"--steps {overrides['steps']} is not above the {done} steps the run "
                       "has done; to use the model as it is, use its checkpoint")
    changed = {k: (getattr(base, k), v) for k, v in overrides.items()
               if k not in RUN_FIELDS and getattr(base, k) != v}
    if changed and not allowed:
        diff = ", ".join(f"--{k.replace('_', '-')} {old} -> {new}"
                         for k, (old, new) in changed.items())
        raise CLIError(
            f"resuming would change the run's recipe ({diff}; {saved}): a resumed run continues "
            "as it was. Pass --change-recipe to change it on purpose (recorded in "
            "metrics.jsonl), or start a new --run-dir"
        )


def _parse_schedule(text: str) -> list[list[int]]:
    """``'0:1,3000:2'`` -> ``[[0, 1], [3000, 2]]`` (``--stage-schedule``)."""
    try:
        return [[int(a), int(b)] for a, b in (item.split(":") for item in text.split(","))]
    except ValueError:
        raise CLIError(
            f"--stage-schedule must be STEP:STAGES pairs separated by commas, e.g. "
            f"0:1,3000:2,5000:8; got {text!r}"
        ) from None


def _model_config(args: argparse.Namespace, run_dir: Path, resuming: bool) -> Any:
    from ..models import ModelConfig

    given = parse_kv(args.model_config)
    saved = run_dir / "config.json"
    base: dict[str, Any] = {}
    init_cfg = None
    if resuming and saved.is_file():
        base = json.loads(saved.read_text()).get("model") or {}
    elif args.init_weights:
        from ..pretrained import initial_weights

        try:
            init_cfg = initial_weights(args.init_weights)[0]
        except (FileNotFoundError, ValueError) as exc:
            raise CLIError(f"--init-weights: {exc}") from None
        base = init_cfg or {}
    fields = [f.name for f in dataclasses.fields(ModelConfig)]
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise CLIError(
            f"--model-config: unknown field(s) {', '.join(unknown)}; ModelConfig has "
            f"{', '.join(fields)}"
        )
    try:
        cfg = ModelConfig(**{**base, **given})
    except TypeError as exc:
        raise CLIError(f"--model-config: {exc}") from None
    if init_cfg is not None and dataclasses.asdict(cfg) != init_cfg:
        # refused here, before the run folder is made (fit would refuse it too)
        diff = ", ".join(f"{k}: weights={init_cfg.get(k)!r} model={v!r}"
                         for k, v in dataclasses.asdict(cfg).items() if init_cfg.get(k) != v)
        raise CLIError(f"--init-weights {args.init_weights} holds another model ({diff}); drop "
                       "the --model-config fields that differ")
    switch = resuming and base.get("decoder", cfg.decoder) != cfg.decoder
    if switch and not args.change_recipe:  # other model changes on resume: refused
        raise CLIError(  # by fit, with both configs named
            f"--model-config decoder={cfg.decoder} switches the decoder of the run being resumed; "
            "pass --change-recipe to do that on purpose (recorded in metrics.jsonl)"
        )
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``sdsen train``; returns the exit code."""
    import torch

    from ..models import build_model
    from ..train import LATEST, fit, load_checkpoint, resolve_device
    from ..train.logs import DATA_FILE, mark_run_dir, refuse_foreign_dir, write_json

    if args.max_minutes is not None and not args.max_minutes > 0:
        raise CLIError(
            f"--max-minutes must be a positive number of minutes (got {args.max_minutes}); "
            "leave it out to train to the last step"
        )
    run_dir = Path(args.run_dir or f"runs/{args.preset or 'quick'}")
    refuse_foreign_dir(run_dir, "--run-dir")
    rank, world = _rank()
    latest = run_dir / LATEST
    if latest.is_file() and not args.resume:
        step = load_checkpoint(latest)["step"]
        raise CLIError(
            f"{run_dir} already holds a checkpoint (step {step}). Pass --resume to continue it, "
            f"choose another --run-dir, or delete its records with `sdsen clean {run_dir}`"
        )
    if args.resume and not latest.is_file():
        raise CLIError(
            f"no checkpoint in {run_dir} to resume ({LATEST} is missing); drop --resume to "
            "start a new run"
        )
    resuming = args.resume
    cfg = _train_config(args, run_dir, resuming)
    model_cfg = _model_config(args, run_dir, resuming)
    data, data_changes = _data_spec(args, run_dir, resuming)
    try:
        device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    train_data = build_train_data(data["data"], cfg, device, data["rain_preset"], data["layout"],
                                  data["val_list"])
    val_data = build_val_data(data["val_data"], data["data"], cfg, data["rain_preset"],
                              data["layout"], data["val_list"])
    if rank == 0:
        mark_run_dir(run_dir)  # first, so that a retry sees a run folder, not foreign files
        write_json(run_dir / DATA_FILE, data)
        n_params = sum(p.numel() for p in model.parameters())
        source = (f"synthetic rain ({data['rain_preset']})" if data["data"] == "synthetic"
                  else data["data"])
        if data["val_list"]:
            source += f" less the pairs named in {data['val_list']} (validated on)"
        print(
            f"sdsen train: {cfg.name} preset, {cfg.steps} steps, batch {cfg.batch_size} of "
            f"{cfg.patch_size}x{cfg.patch_size}, lr {cfg.lr}, device {device}"
            f"{f' x{world} processes' if world > 1 else ''}; model {model_cfg} "
            f"({n_params:,} parameters); data {source}; run folder {run_dir}"
        )
    with warnings.catch_warnings():
        if rank != 0:
            warnings.simplefilter("ignore")
        hist = fit(
            model,
            train_data,
            val_data,
            cfg,
            run_dir,
            resume=True,
            progress=not args.no_progress,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
            data_changes=data_changes,
        )
    if rank == 0:
        if hist["config_changes"]:
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in hist["config_changes"].items())
            print(f"resumed at step {hist['start_step']} with changed settings: {changes}")
        last = hist.get("last_val_psnr")
        val = f", last validation PSNR {last:.2f} dB (RGB)" if last is not None else ""
        if hist["stopped_early"]:
            why = "time limit" if hist["signal"] is None else f"signal {hist['signal']}"
            head = (
                f"{why}: stopped at step {hist['final_step']} of {cfg.steps} after "
                f"{hist['seconds']:.0f} s; continue with the same command plus --resume "
                f"(or: sdsen train --run-dir {run_dir} --resume)"
            )
        else:
            head = f"done: step {hist['final_step']} in {hist['seconds']:.0f} s{val}."
        print(
            f"{head}\n"
            f"checkpoint: {run_dir / LATEST}\n"
            f"evaluate:   sdsen evaluate --checkpoint {run_dir / LATEST} DATA_DIR\n"
            f"curves:     tensorboard --logdir {run_dir}  (or {run_dir / 'metrics.jsonl'})"
        )
    return 0 if hist["signal"] is None else 128 + hist["signal"]  # stopped, resumable
