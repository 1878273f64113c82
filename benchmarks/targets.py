"""The default model's targets, measured: Rain800 validation, RainCityscapes, do no harm, angles.

Scores shipped weights or a training checkpoint on data it never trained on, in both metric
protocols (RGB and MATLAB's Y; outputs clamped and truncated to 8 bits), and checks each
number against its target (:data:`TARGETS`)::

    python benchmarks/targets.py --weights sdsen --record          # every part (about 2 h on 2 cores)
    python benchmarks/targets.py --checkpoint campaign/sdsen/latest.pt --parts rain800
    python benchmarks/targets.py --table [--readme README.md]       # targets of every record
    python benchmarks/targets.py --weights sdsen --sheet /tmp/sheet  # real rain, for your eyes

Parts (``--parts``; data from ``../shared/data`` beside the checkout, ``--data-root``):

- ``rain800``: the 46 validation pairs of ``rain800_train`` (``val.txt``), whole images, every
  stage; and the mean per channel of the removed layer ``O - output`` against the true rain
  ``O - B`` (8-bit levels: a colour cast shows as a difference between channels).
- ``rot90``: the same pairs turned by 90 degrees (horizontal rain), last stage.
- ``cityscapes``: the 100 pairs of ``raincityscapes_test100`` (rendered rain and haze).
- ``clean``: no rain at all: the built-in photos and the clean halves of the validation pairs
  go in, PSNR(output, input) comes out (high is harmless).
- ``light``: the ``light`` rain preset over the central 256 x 256 crops of the 46 validation
  backgrounds (one draw each).
- ``sweep``: single-layer streaks (``SWEEP_PARAMS``) at every angle from -90 to 90 degrees in
  15 degree steps over the central 128 x 128 crops of the 46 validation backgrounds (the same
  rain draws for every model).

``--record`` writes ``benchmarks/results/targets/NAME.json`` (scores per image, the command,
date and machine). ``--sheet DIR`` writes before/after contact sheets of the left halves of
``real_rain_photos/`` to DIR: third-party photos, look at them, never commit them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sdsen.data import (
    CenterCropPairs,
    PairedImageFolder,
    builtin_clean_images,
    builtin_names,
    read_image,
    read_name_list,
    split_by_names,
    to_tensor,
    write_image,
)
from sdsen.metrics import quantize_8bit, score_image
from sdsen.rain import PRESETS, sample_params, synthesize

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "benchmarks" / "results" / "targets"
PARTS = ("rain800", "rot90", "cityscapes", "clean", "light", "sweep")
ANGLES = list(range(-90, 91, 15))
#: Single-layer streaks in the middle of the ``v1-heavy`` preset's ranges, without haze.
SWEEP_PARAMS = {"length": 17.0, "width": 3.5, "density": 0.002, "intensity": 0.4, "layers": 1,
                "atmosphere": 0.1, "atmosphere_relative": True}
SWEEP_SEED, LIGHT_SEED = 4048, 5151

#: Target name -> (what it measures, comparison, threshold).
TARGETS: dict[str, tuple[str, str, float]] = {
    "rain800_psnr_y": ("Rain800 val, Y PSNR of the last stage (dB)", ">=", 28.0),
    "rain800_ssim_y": ("Rain800 val, Y SSIM of the last stage", ">=", 0.88),
    "rain800_last_vs_best": ("Rain800 val, last stage minus best stage (dB)", ">=", -0.05),
    "rain800_colour": ("Rain800 val, largest channel gap of removed vs true rain (levels)",
                       "<=", 2.0),
    "cityscapes_psnr_y": ("RainCityscapes, Y PSNR (dB)", ">=", 22.5),
    "cityscapes_ssim_y": ("RainCityscapes, Y SSIM", ">=", 0.88),
    "cityscapes_above_input": ("RainCityscapes, pairs above the rainy input (of 100)", ">=", 90),
    "clean_psnr_min": ("No rain: lowest mean PSNR(output, input) of the two sets (dB)", ">=",
                       38.0),
    "light_gain_y": ("`light` preset, Y gain over the rainy input (dB)", ">", 0.0),
    "rot90_gain_y": ("Rain800 val turned 90 deg, Y gain over the rainy input (dB)", ">=", 3.0),
    "sweep_min_gain_y": ("Synthetic rain at -90..90 deg, smallest Y gain over the angles (dB)",
                         ">=", 3.0),
}


# ----------------------------------------------------------------------------- data
def default_data_root() -> Path:
    return ROOT.parent / "shared" / "data"


def rain800_val(root: Path) -> PairedImageFolder:
    """The 46 validation pairs of ``rain800_train`` (named in its ``val.txt``)."""
    folder = root / "rain800_train"
    return split_by_names(PairedImageFolder(folder, layout="side_by_side", order="BO"),
                          read_name_list(folder / "val.txt"))[1]


def _backgrounds(val: PairedImageFolder, size: int) -> list[tuple[str, torch.Tensor]]:
    """Central ``size`` crops of the validation pairs' clean halves."""
    crops = CenterCropPairs(val, size)
    return [(name, crops[i][1]) for i, name in enumerate(val.names)]


# ----------------------------------------------------------------------------- scoring
@torch.no_grad()
def stage_estimates(model: nn.Module, rainy: torch.Tensor) -> list[torch.Tensor]:
    """``O - R_t`` of every stage for one ``(3, H, W)`` image, each ``(3, H, W)``."""
    x = rainy.unsqueeze(0)
    return [(x - r.float())[0] for r in model(x)]


def score_pairs(
    model: nn.Module, pairs: Iterable[tuple[str, torch.Tensor, torch.Tensor]],
    last_only: bool = False, colour: bool = False,
) -> dict[str, Any]:
    """Per-image scores of every stage (``'input'`` = rainy vs clean), in both protocols.

    Returns
    -------
    dict
        ``{"rows": [{"image", "stage", "psnr_rgb", ...}], "colour": {...}}``; ``colour`` (with
        ``colour=True``) holds the mean per channel, in 8-bit levels, of the removed layer
        ``O - output`` of the last stage and of the true rain ``O - B``.
    """
    rows: list[dict[str, Any]] = []
    removed, true = np.zeros(3), np.zeros(3)
    pixels = 0
    for name, rainy, clean in pairs:
        outs = stage_estimates(model, rainy)
        labels = [str(t + 1) for t in range(len(outs))]
        if last_only:
            outs, labels = outs[-1:], labels[-1:]
        for label, est in zip(["input", *labels], [rainy, *outs]):
            rows.append({"image": name, "stage": label, **score_image(est, clean)})
        if colour:
            out8 = quantize_8bit(outs[-1])
            n = rainy.shape[-1] * rainy.shape[-2]
            removed += (rainy - out8).sum(dim=(1, 2)).double().numpy() * 255
            true += (rainy - clean).sum(dim=(1, 2)).double().numpy() * 255
            pixels += n
    result: dict[str, Any] = {"rows": rows}
    if colour:
        result["colour"] = {"removed": (removed / pixels).round(3).tolist(),
                            "true": (true / pixels).round(3).tolist()}
    return result


def means(rows: list[dict[str, Any]], key: str = "psnr_y") -> dict[str, float]:
    """Mean of ``key`` per stage label, in stage order."""
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r["stage"], []).append(r[key])
    return {s: statistics.fmean(v) for s, v in out.items()}


def gain(rows: list[dict[str, Any]], key: str = "psnr_y") -> float:
    """Mean of the last stage minus the rainy input."""
    m = means(rows, key)
    return list(m.values())[-1] - m["input"]


# ----------------------------------------------------------------------------- parts
def part_rain800(model: nn.Module, root: Path, quick: bool) -> dict[str, Any]:
    val = rain800_val(root)
    n = 2 if quick else len(val)
    pairs = ((val.names[i], *val[i]) for i in range(n))
    return score_pairs(model, pairs, colour=True)


def part_rot90(model: nn.Module, root: Path, quick: bool) -> dict[str, Any]:
    val = rain800_val(root)
    n = 2 if quick else len(val)

    def turned() -> Iterable[tuple[str, torch.Tensor, torch.Tensor]]:
        for i in range(n):
            rainy, clean = val[i]
            yield val.names[i], rainy.rot90(1, (-2, -1)), clean.rot90(1, (-2, -1))

    return score_pairs(model, turned(), last_only=True)


def part_cityscapes(model: nn.Module, root: Path, quick: bool) -> dict[str, Any]:
    folder = PairedImageFolder(root / "raincityscapes_test100")
    n = 2 if quick else len(folder)
    return score_pairs(model, ((folder.names[i], *folder[i]) for i in range(n)))


def part_clean(model: nn.Module, root: Path, quick: bool) -> dict[str, Any]:
    photos = list(zip(builtin_names("all"), builtin_clean_images("all")))
    val = rain800_val(root)
    halves = [(val.names[i], val[i][1]) for i in range(len(val))]
    if quick:
        photos, halves = photos[:1], halves[:1]
    out = {}
    for key, images in (("builtin", photos), ("rain800_clean_halves", halves)):
        pairs = ((name, _chw(im), _chw(im)) for name, im in images)
        out[key] = score_pairs(model, pairs, last_only=True)["rows"]
    return out


def _chw(image: Any) -> torch.Tensor:
    """A float ``(3, H, W)`` tensor from a ``(3, H, W)`` tensor or an ``(H, W, 3)`` array."""
    return image.float() if isinstance(image, torch.Tensor) else to_tensor(image)


def _rainy(clean: torch.Tensor, params: Any) -> torch.Tensor:
    fields = {k: getattr(params, k) for k in params.__dataclass_fields__}
    return synthesize(clean, **fields).rainy


def part_light(model: nn.Module, root: Path, quick: bool) -> dict[str, Any]:
    backgrounds = _backgrounds(rain800_val(root), 256)[: 2 if quick else None]
    rng = np.random.default_rng(LIGHT_SEED)
    pairs = [(name, _rainy(clean, sample_params(PRESETS["light"], rng)), clean)
             for name, clean in backgrounds]
    return score_pairs(model, pairs, last_only=True)


def part_sweep(model: nn.Module, root: Path, quick: bool) -> dict[str, Any]:
    from sdsen.rain import RainParams

    backgrounds = _backgrounds(rain800_val(root), 128)[: 2 if quick else None]
    angles = [-90, 0, 45] if quick else ANGLES
    out = {}
    for angle in angles:
        pairs = []
        for k, (name, clean) in enumerate(backgrounds):
            params = RainParams(angle=float(angle), seed=SWEEP_SEED + k, **SWEEP_PARAMS)
            pairs.append((name, _rainy(clean, params), clean))
        out[str(angle)] = score_pairs(model, pairs, last_only=True)["rows"]
    return out


PART_FUNCS: dict[str, Callable[[nn.Module, Path, bool], dict[str, Any]]] = {
    "rain800": part_rain800, "rot90": part_rot90, "cityscapes": part_cityscapes,
    "clean": part_clean, "light": part_light, "sweep": part_sweep,
}


# ----------------------------------------------------------------------------- targets
def target_values(parts: dict[str, Any]) -> dict[str, float]:
    """The value of every target that ``parts`` (a record's ``parts``) measured."""
    v: dict[str, float] = {}
    if "rain800" in parts:
        rows = parts["rain800"]["rows"]
        psnr, ssim = means(rows), means(rows, "ssim_y")
        stages = [s for s in psnr if s != "input"]
        v["rain800_psnr_y"] = psnr[stages[-1]]
        v["rain800_ssim_y"] = ssim[stages[-1]]
        v["rain800_last_vs_best"] = psnr[stages[-1]] - max(psnr[s] for s in stages)
        c = parts["rain800"]["colour"]
        diff = np.subtract(c["removed"], c["true"])
        v["rain800_colour"] = float(diff.max() - diff.min())
    if "cityscapes" in parts:
        rows = parts["cityscapes"]["rows"]
        psnr, ssim = means(rows), means(rows, "ssim_y")
        last = list(psnr)[-1]
        v["cityscapes_psnr_y"] = psnr[last]
        v["cityscapes_ssim_y"] = ssim[last]
        by_image: dict[str, dict[str, float]] = {}
        for r in rows:
            by_image.setdefault(r["image"], {})[r["stage"]] = r["psnr_y"]
        v["cityscapes_above_input"] = sum(s[last] > s["input"] for s in by_image.values())
    if "clean" in parts:
        v["clean_psnr_min"] = min(
            means(rows)[list(means(rows))[-1]] for rows in parts["clean"].values())
    if "light" in parts:
        v["light_gain_y"] = gain(parts["light"]["rows"])
    if "rot90" in parts:
        v["rot90_gain_y"] = gain(parts["rot90"]["rows"])
    if "sweep" in parts:
        v["sweep_min_gain_y"] = min(gain(rows) for rows in parts["sweep"].values())
    return v


def meets(name: str, value: float) -> bool:
    """Whether ``value`` meets target ``name``."""
    _, op, threshold = TARGETS[name]
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold}[op]


def input_values(parts: dict[str, Any]) -> dict[str, float]:
    """The rainy input's own value of the absolute-score targets that ``parts`` measured."""
    v: dict[str, float] = {}
    for part in ("rain800", "cityscapes"):
        if part in parts:
            rows = parts[part]["rows"]
            v[f"{part}_psnr_y"] = means(rows)["input"]
            v[f"{part}_ssim_y"] = means(rows, "ssim_y")["input"]
    return v


def targets_table(records: dict[str, dict[str, Any]]) -> str:
    """Markdown table: one row per target, one column per record (value and whether met),
    and the rainy input's value where the target is an absolute score."""
    names = list(records)
    values = {n: target_values(r["parts"]) for n, r in records.items()}
    inputs: dict[str, float] = {}
    for r in records.values():
        inputs.update(input_values(r["parts"]))
    lines = ["| target | goal | rainy input | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for key, (what, op, threshold) in TARGETS.items():
        given = inputs.get(key)
        cells = ["" if given is None else f"{given:.3f}" if "ssim" in key else f"{given:.2f}"]
        for n in names:
            if key not in values[n]:
                cells.append("not measured")
                continue
            val = values[n][key]
            text = f"{val:.0f}" if key.endswith("above_input") else (
                f"{val:.3f}" if "ssim" in key else f"{val:+.2f}" if "gain" in key or "vs" in key
                else f"{val:.2f}")
            cells.append(f"{text} {'yes' if meets(key, val) else '**no**'}")
        lines.append(f"| {what} | {op} {threshold:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_table(records: dict[str, dict[str, Any]]) -> str:
    """Markdown table of the Y gain over the rainy input at each sweep angle."""
    rows = {n: r["parts"]["sweep"] for n, r in records.items() if "sweep" in r["parts"]}
    if not rows:
        return ""
    angles = list(next(iter(rows.values())))
    lines = ["| model | " + " | ".join(f"{a}°" for a in angles) + " |",
             "|---|" + "---|" * len(angles)]
    for n, sweep in rows.items():
        lines.append(f"| `{n}` | " + " | ".join(f"{gain(sweep[a]):+.2f}" for a in angles) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- contact sheet
@torch.no_grad()
def contact_sheets(model: nn.Module, root: Path, out: Path, per_sheet: int = 6) -> list[Path]:
    """Before | after rows of the left halves of ``real_rain_photos/``, ``per_sheet`` a file."""
    from sdsen.models import derain_image

    files = sorted((root / "real_rain_photos").glob("*.jpg"),
                   key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    rows, written = [], []
    for k, path in enumerate(files):
        img = read_image(path)
        left = np.ascontiguousarray(img[:, : img.shape[1] // 2])
        after = derain_image(model, left)
        after = after.permute(1, 2, 0).numpy() if isinstance(after, torch.Tensor) else after
        h = 360
        rows.append(_resize_row([left, np.clip(after, 0, 1)], h, path.stem))
        if len(rows) == per_sheet or k == len(files) - 1:
            width = max(r.shape[1] for r in rows)
            sheet = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)))
                                    for r in rows])
            target = out / f"sheet_{len(written) + 1:02d}.jpg"
            write_image(target, sheet, overwrite=True)
            written.append(target)
            rows = []
    return written


def _resize_row(images: list[np.ndarray], h: int, label: str) -> np.ndarray:
    import torch.nn.functional as F

    out = []
    for im in images:
        t = torch.from_numpy(im).permute(2, 0, 1)[None]
        w = round(im.shape[1] * h / im.shape[0])
        out.append(F.interpolate(t, size=(h, w), mode="area")[0].permute(1, 2, 0).numpy())
    return np.concatenate([out[0], np.ones((h, 6, 3), np.float32), out[1]], axis=1)


# ----------------------------------------------------------------------------- main
def load_model(args: argparse.Namespace) -> tuple[nn.Module, str, str]:
    """The model to score, its record name and a description of its source."""
    if args.checkpoint:
        from sdsen.train import load_checkpoint, model_from_checkpoint

        step = load_checkpoint(args.checkpoint)["step"]
        model = model_from_checkpoint(args.checkpoint).eval()
        if args.stages:
            model = with_stages(model, args.stages)
        return model, args.name or f"{Path(args.checkpoint).parent.name}-step{step}", (
            f"checkpoint {args.checkpoint} (step {step})"
            + (f", first {args.stages} stages" if args.stages else ""))
    from sdsen import load_pretrained

    return load_pretrained(args.weights), args.name or args.weights, f"weights {args.weights}"


def write_block(path: Path, body: str, start: str = "<!-- targets:start -->",
                end: str = "<!-- targets:end -->") -> None:
    """Put ``body`` between the markers ``start`` and ``end`` of ``path`` (which must hold them)."""
    text = path.read_text()
    i, j = text.find(start), text.find(end)
    if not 0 <= i < j:
        raise SystemExit(f"{path} has no {start} ... {end} block to write the table into")
    note = "<!-- generated by python benchmarks/targets.py --table --readme; do not edit -->\n"
    path.write_text(text[: i + len(start)] + "\n" + note + body + text[j:])


def with_stages(model: nn.Module, stages: int) -> nn.Module:
    """The same weights in a model that runs only its first ``stages`` stages."""
    from sdsen.models import ModelConfig, build_model

    cfg = dataclasses.replace(model.config, stages=stages)
    out = build_model(ModelConfig(**dataclasses.asdict(cfg)))
    out.load_state_dict(model.state_dict())
    return out.eval()


def load_records(folder: Path = RECORDS) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--weights", default=None, help="shipped weights name (default sdsen)")
    src.add_argument("--checkpoint", default=None, help="a training checkpoint (latest.pt)")
    ap.add_argument("--name", default=None, help="record name (default: weights name or run)")
    ap.add_argument("--stages", type=int, default=None,
                    help="with --checkpoint: run only the first N stages (as ship_run --stages)")
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--quick", action="store_true", help="two images per part (smoke test)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--record", action="store_true",
                    help=f"write {RECORDS.relative_to(ROOT)}/NAME.json (merged with its parts)")
    ap.add_argument("--records", type=Path, default=RECORDS)
    ap.add_argument("--table", action="store_true", help="print the targets of every record")
    ap.add_argument("--readme", type=Path, default=None,
                    help="with --table: also write it between the targets markers of this file")
    ap.add_argument("--only", nargs="+", default=None, help="with --table: these records only")
    ap.add_argument("--sheet", type=Path, default=None,
                    help="write real-rain before/after contact sheets to this folder")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.table:
        records = load_records(args.records)
        if args.only:
            records = {n: records[n] for n in args.only if n in records}
        text = targets_table(records)
        print(text)
        print(sweep_table(records))
        if args.readme:
            write_block(args.readme, text)
        return
    if not args.weights and not args.checkpoint:
        args.weights = "sdsen"
    model, name, source = load_model(args)
    model.eval()
    if args.sheet:
        for path in contact_sheets(model, args.data_root, args.sheet):
            print(path)
        return
    parts: dict[str, Any] = {}
    for part in args.parts:
        t0 = time.perf_counter()
        parts[part] = PART_FUNCS[part](model, args.data_root, args.quick)
        print(f"{part}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    record = {
        "name": name, "source": source, "quick": args.quick,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "command": "python benchmarks/targets.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv),
        "parts": parts,
    }
    print(targets_table({name: record}))
    print(sweep_table({name: record}))
    if args.record:
        path = args.records / f"{name}.json"
        old = json.loads(path.read_text()) if path.exists() else None
        args.records.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merge_record(old, record), indent=1) + "\n")
        print(f"recorded {path}")


def merge_record(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the parts of ``old`` it did not measure, when both score the same model.

    The commands of both are kept (joined by ``" && "``); a record of another model (another
    ``source``) is replaced, never mixed.

    >>> a = {"source": "m", "command": "a", "parts": {"x": 1, "y": 2}}
    >>> merge_record(a, {"source": "m", "command": "b", "parts": {"y": 3}})["parts"]
    {'x': 1, 'y': 3}
    >>> merge_record(a, {"source": "n", "command": "b", "parts": {"y": 3}})["parts"]
    {'y': 3}
    """
    if old is None or old.get("source") != new["source"]:
        return new
    return {**new, "command": f"{old['command']} && {new['command']}",
            "parts": {**old.get("parts", {}), **new["parts"]}}


if __name__ == "__main__":
    main()
