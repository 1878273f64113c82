r"""Ship an ``sdsen train`` run as pretrained weights with its model card.

    python scripts/ship_run.py campaign/sdsen --name sdsen \
        --role "default: SDSEN p4, official architecture, trained on real photographs" \
        --hardware "CPU x86_64, 2 cores" --command "sdsen train --preset cpu --data ..." \
        --scope "what it removes and what it does not" [--checkpoint FILE] [--stages N]

It writes ``sdsen/weights/NAME.pt`` from the run's ``latest.pt`` (or ``--checkpoint``; refusing
to replace an existing file without ``--force``), and the card ``NAME`` of
``sdsen/weights/cards.json``: model and training config, the training data as ``data.json`` and
the recipe name it, steps done and planned, training time (the sum over the run's chunks),
settings changed on resume, where the run's own validation curve stands and its slope over the
last 20 % of steps, hardware, torch version, date, commands, and the scores of
``benchmarks/targets.py`` recorded for NAME (Rain800 validation split and RainCityscapes, both
protocols). Then it renders ``sdsen/weights/README.md``
(:func:`sdsen.pretrained.cards_markdown`) and drops NAME from ``benchmarks/results/zoo.json``
(the study models of ``scripts/train_pretrained.py``), whose cards ``benchmarks/results.py
report`` rewrites. Score first, then ship::

    python benchmarks/targets.py --checkpoint campaign/sdsen/latest.pt --name sdsen --record
    python scripts/ship_run.py campaign/sdsen --name sdsen --force ...

``--stages N`` ships a model that runs only the first N of the architecture's stages (their
weights are shared): for a run that has not yet trained them all (``stage_schedule``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdsen.models import ModelConfig, build_model
from sdsen.pretrained import WEIGHTS_DIR, cards_markdown, save_weights
from sdsen.train import (
    LATEST,
    config_changes,
    load_checkpoint,
    read_metrics,
    validation_trend,
)
from sdsen.train.logs import DATA_FILE

RECORDS = ROOT / "benchmarks" / "results" / "targets"
ZOO = ROOT / "benchmarks" / "results" / "zoo.json"
#: targets.py parts -> card metric names
METRIC_PARTS = {"rain800": "Rain800 validation split", "cityscapes": "RainCityscapes"}


def train_seconds(run_dir: Path, up_to: int | None = None) -> float:
    """Training time of the steps kept in ``run_dir`` (up to step ``up_to``): the sum over its
    chunks.

    Each ``sdsen train`` call logs ``elapsed_s`` from its own start, so the time of a chunk is
    its last ``elapsed_s``; a chunk ends at a ``resume`` line (or, in runs older than those
    lines, where ``elapsed_s`` drops).
    """
    total, last = 0.0, 0.0
    for row in read_metrics(run_dir):
        if up_to is not None and row["step"] > up_to:
            break
        if row["event"] == "resume":
            total, last = total + last, 0.0
        elif row["event"] == "train":
            t = float(row.get("elapsed_s", 0.0))
            if t < last:
                total += last
            last = t
    return round(total + last, 3)


def training_data(run_dir: Path, train_config: dict[str, Any], step: int,
                  changes: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """What the run trained on up to ``step``: its ``data.json`` and the recipe's data fields.

    A data setting changed on a later resume (``changes``, the run's
    :func:`~sdsen.train.config_changes`, e.g. ``--change-recipe --rain-preset ...``) is read as
    it was before that change.
    """
    data = json.loads((run_dir / DATA_FILE).read_text()) if (run_dir / DATA_FILE).is_file() \
        else {}
    for changed_at, changed in reversed(changes):
        if changed_at >= step:  # applies from changed_at + 1 on: not to this checkpoint
            data.update({k: old for k, (old, _) in changed.items() if k in data})
    folder = data.get("data", "synthetic")
    out: dict[str, Any] = {
        "data": folder if folder == "synthetic" else Path(folder).name,
        "held out": Path(data["val_list"]).name if data.get("val_list") else None,
        "rain preset (synthetic rain)": data.get("rain_preset"),
    }
    for key in ("augment", "synthetic_mix", "clean_mix", "rain_angles"):
        out[key] = train_config.get(key)
    return out


def validation_text(train_config: dict[str, Any]) -> str:
    crop = train_config.get("val_crop")
    where = f"central {crop}x{crop} crops" if crop else "whole images"
    return f"{where} of the held-out pairs"


def scores(name: str, records: Path) -> dict[str, dict[str, float]]:
    """Last-stage means of the Rain800 and RainCityscapes parts of NAME's targets record."""
    path = records / f"{name}.json"
    if not path.is_file():
        return {}
    parts = json.loads(path.read_text())["parts"]
    out = {}
    for part, label in METRIC_PARTS.items():
        rows = parts.get(part, {}).get("rows")
        if not rows:
            continue
        last = [r for r in rows if r["stage"] == rows[-1]["stage"]]
        out[label] = {k: round(sum(r[k] for r in last) / len(last), 4)
                      for k in ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")}
        out[label]["images"] = len(last)
        inputs = [r for r in rows if r["stage"] == "input"]
        out[label]["rainy_input_psnr_y"] = round(sum(r["psnr_y"] for r in inputs) / len(inputs),
                                                 4)
    return out


def card_for(run_dir: Path, checkpoint: Path, model_config: dict[str, Any],
             args: argparse.Namespace) -> dict[str, Any]:
    """The model card of the weights shipped from ``checkpoint`` of ``run_dir``."""
    payload = load_checkpoint(checkpoint)
    tc = payload["train_config"]
    step, changes = int(payload["step"]), config_changes(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    trend = None
    if read_metrics(run_dir, "val"):
        trend = {"what": validation_text(tc), **validation_trend(run_dir)}
    return {
        "role": args.role,
        "study": args.study,
        "model_config": model_config,
        "training_data": training_data(run_dir, tc, step, changes),
        "train_config": tc,
        "steps": step,
        "steps_planned": int(tc["steps"]),
        "train_seconds": train_seconds(run_dir, step),
        # a change recorded at step S applies from step S + 1 on
        "config_changes": [[at, changed] for at, changed in changes if at < step],
        "validation": trend,
        "hardware": args.hardware,
        "torch": config.get("torch_version"),
        "date": args.date,
        "command": args.command,
        "command_as_run": args.command_as_run,
        "scope": args.scope,
        "metrics": scores(args.name, args.records),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="an sdsen train run folder (with latest.pt)")
    ap.add_argument("--name", required=True, help="shipped model name")
    ap.add_argument("--role", required=True, help="one sentence: why a user would pick it")
    ap.add_argument("--hardware", required=True, help="what trained it, e.g. 'CPU, 2 cores'")
    ap.add_argument("--command", required=True, help="the command that started the run")
    ap.add_argument("--command-as-run", default=None, help="the calls that actually ran")
    ap.add_argument("--scope", default=None, help="what it removes and what it does not")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="checkpoint to ship (default RUN_DIR/latest.pt)")
    ap.add_argument("--stages", type=int, default=None,
                    help="ship a model running the first N stages of the architecture")
    ap.add_argument("--study", action="store_true", help="a study model (listed apart)")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--records", type=Path, default=RECORDS, help="benchmarks/targets.py records")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--zoo", type=Path, default=ZOO,
                    help="the study models' record of scripts/train_pretrained.py: an entry of "
                    "NAME there is removed, so that benchmarks/results.py keeps this card")
    ap.add_argument("--force", action="store_true", help="replace existing weights of NAME")
    args = ap.parse_args(argv)

    checkpoint = args.checkpoint or args.run_dir / LATEST
    if not checkpoint.is_file():
        ap.error(f"{checkpoint} does not exist: pass the folder of an sdsen train run (with "
                 f"{LATEST}) or an existing --checkpoint")
    target = args.weights_dir / f"{args.name}.pt"
    if target.exists() and not args.force:
        ap.error(f"{target} exists; pass --force to replace it (or choose another --name)")
    payload = load_checkpoint(checkpoint)
    model_config = dict(payload["model_config"])
    if args.stages is not None:
        if not 1 <= args.stages <= model_config["stages"]:
            ap.error(f"--stages must be 1 to {model_config['stages']}, got {args.stages}")
        model_config["stages"] = args.stages
    model = build_model(ModelConfig(**model_config))
    model.load_state_dict(payload["model"])
    card = card_for(args.run_dir, checkpoint, dataclasses.asdict(model.config), args)
    save_weights(model, target)
    cards_path = args.weights_dir / "cards.json"
    cards = json.loads(cards_path.read_text()) if cards_path.is_file() else {}
    cards[args.name] = card
    cards_path.write_text(json.dumps(cards, indent=1) + "\n")
    (args.weights_dir / "README.md").write_text(cards_markdown(cards))
    zoo = json.loads(args.zoo.read_text()) if args.zoo.is_file() else None
    if zoo and zoo["models"].pop(args.name, None) is not None:
        args.zoo.write_text(json.dumps(zoo, indent=1) + "\n")
    print(f"{target}: step {card['steps']} of {card['steps_planned']}, "
          f"{card['train_seconds'] / 60:.1f} min of training; card {args.name!r} in {cards_path}")


if __name__ == "__main__":
    main()
