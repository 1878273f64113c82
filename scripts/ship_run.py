r"""Ship an ``sdsen train`` run folder as pretrained weights, with its ``zoo.json`` entry.

``scripts/train_pretrained.py`` records the models it trains itself; a run made with the
command line (``sdsen train``, e.g. the official preset in chunks on a GPU by
``scripts/gpu_official_chunk.sh``) is shipped with this script::

    python scripts/ship_run.py runs/official --name sdsen-official \
        --hardware "NVIDIA H200, one model alone" \
        --command "sdsen train --preset official --data synthetic --rain-preset mixed \
            --run-dir runs/official --device cuda" \
        --command-as-run "bash scripts/gpu_official_chunk.sh 8.4 (then 4.0, 3.6 ...)" \
        --role "SDSEN p4, the official preset ..."

It writes ``sdsen/weights/NAME.pt`` from the run's ``latest.pt`` (refusing to replace an
existing file without ``--force``) and the entry ``models[NAME]`` of
``benchmarks/results/zoo.json``: model and train config, steps done and planned, training time
(the sum over the run's chunks, from ``metrics.jsonl``), the training loss per stage of the
last log line, the settings changed on resume (:func:`sdsen.train.config_changes`), hardware,
torch version, date and commands. Then score and render it::

    python benchmarks/results.py evaluate --only NAME [--device cuda]
    python benchmarks/results.py report --zoo benchmarks/results/zoo.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdsen.pretrained import WEIGHTS_DIR, save_weights
from sdsen.train import LATEST, config_changes, load_checkpoint, read_metrics
from sdsen.train.checkpoint import model_from_checkpoint
from sdsen.train.logs import DATA_FILE, write_json

#: What ``sdsen train --data synthetic`` trains on (no rot90/mirror, unlike train_pretrained.py).
CLI_PHOTOS = (
    "built-in train split (sdsen.data.builtin_clean_images('train')), random square crops of "
    "the preset's patch size, rain drawn per crop (`sdsen train --data synthetic`: "
    "sdsen.data.DeviceRainBatches on a GPU, SyntheticRainDataset on a CPU; no rot90/mirror)"
)


def train_seconds(run_dir: Path) -> float:
    """Training time of the steps kept in ``run_dir``: the sum over its chunks.

    Each ``sdsen train`` call logs ``elapsed_s`` from its own start, so the time of a chunk is
    its last ``elapsed_s``; a chunk ends at a ``resume`` line (or, in runs older than those
    lines, where ``elapsed_s`` drops).
    """
    total, last = 0.0, 0.0
    for row in read_metrics(run_dir):
        if row["event"] == "resume":
            total, last = total + last, 0.0
        elif row["event"] == "train":
            t = float(row.get("elapsed_s", 0.0))
            if t < last:
                total += last
            last = t
    return round(total + last, 3)


def _rain_preset(run_dir: Path, given: str | None) -> str:
    """The run's rain preset: ``given``, else its ``data.json`` (sdsen train), else 'mixed'."""
    if given:
        return given
    data = run_dir / DATA_FILE
    return json.loads(data.read_text())["rain_preset"] if data.is_file() else "mixed"


def entry_for(run_dir: Path, args: argparse.Namespace) -> dict:
    """The zoo.json entry of the run in ``run_dir`` (see the module docstring)."""
    payload = load_checkpoint(run_dir / LATEST)
    train_config = payload["train_config"]
    config = json.loads((run_dir / "config.json").read_text())
    rows = read_metrics(run_dir, "train")
    return {
        "role": args.role,
        "model_config": payload["model_config"],
        "preset": _rain_preset(run_dir, args.rain_preset),
        "angle_range": None,
        "augment": False,
        "photos": CLI_PHOTOS,
        "train_config": train_config,
        "steps": int(payload["step"]),
        "steps_planned": int(train_config["steps"]),
        "stopped_early": int(payload["step"]) < int(train_config["steps"]),
        "train_seconds": train_seconds(run_dir),
        "final_loss_stages": rows[-1]["loss_stages"] if rows else None,
        "config_changes": [[step, changed] for step, changed in config_changes(run_dir)],
        "hardware": args.hardware,
        "torch": config.get("torch_version"),
        "date": args.date,
        "command": args.command,
        "command_as_run": args.command_as_run,
        "run_dir": str(run_dir),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="an sdsen train run folder (with latest.pt)")
    ap.add_argument("--name", required=True, help="shipped model name")
    ap.add_argument("--role", required=True, help="one sentence for the model card")
    ap.add_argument("--hardware", required=True, help="what trained it, e.g. 'NVIDIA H200'")
    ap.add_argument("--command", required=True, help="the equivalent single command")
    ap.add_argument("--command-as-run", default=None, help="the calls that actually ran")
    ap.add_argument("--rain-preset", default=None,
                    help="the run's --rain-preset (default: from its data.json, else mixed)")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--zoo", type=Path, default=ROOT / "benchmarks" / "results" / "zoo.json")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--force", action="store_true", help="replace existing weights of NAME")
    args = ap.parse_args(argv)

    if not (args.run_dir / LATEST).is_file():
        ap.error(f"{args.run_dir} holds no {LATEST}: pass the folder of an sdsen train run")
    target = args.weights_dir / f"{args.name}.pt"
    if target.exists() and not args.force:
        ap.error(f"{target} exists; pass --force to replace it (or choose another --name)")
    entry = entry_for(args.run_dir, args)
    save_weights(model_from_checkpoint(args.run_dir / LATEST), target)
    zoo = json.loads(args.zoo.read_text()) if args.zoo.exists() else {"models": {}}
    zoo["models"][args.name] = entry
    write_json(args.zoo, zoo, indent=1, sort_keys=False)
    print(f"{target}: step {entry['steps']} of {entry['steps_planned']}, "
          f"{entry['train_seconds'] / 60:.1f} min of training; entry {args.name!r} in {args.zoo}")


if __name__ == "__main__":
    main()
