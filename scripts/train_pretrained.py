r"""Train the shipped pretrained models (``sdsen/weights/``).

Every model is trained only on the project's synthetic rain over the built-in training photos
(``sdsen.data.DeviceRainBatches('train', augment=True)``), with the official objective and
optimiser (sum over stages of the MSE on R, Adam, learning rate x0.1 at 75 % and 87.5 % of the
steps). Models of one recipe share batch, patch size and steps, so comparisons within a recipe
are at equal budget. Each model trains in its own process (``--worker``) through
:func:`sdsen.train.fit`, so an interrupted run resumes exactly from its atomic ``latest.pt``:
run the same command again.

What produced the shipped weights (2-core CPU, one torch thread per worker), in this order (as
recorded in ``benchmarks/results/zoo.json``; the first trained ``sdsen``, since replaced, and
``dsen``)::

    python scripts/train_pretrained.py --out runs/zoo --jobs 2 --threads 1
    python scripts/train_pretrained.py --out runs/zoo --jobs 1 --threads 1 --only dsen-vertical \
        plain-vertical dsen-p4m-vertical dsen-equivariant-vertical dsen-uncalibrated
    # the three 8-stage models of the equal-budget comparison, again, with the gradient norm
    # clipped to 1: without clipping the sdsen-p4m run (then also trained with --only
    # sdsen-p4m, and plain with --only plain) diverged; the earlier runs were moved aside first.
    # sdsen-p4m still blew up at lr 1e-3 (stage-8 loss 473 at step 320) and was stopped there;
    # it was trained at 5e-4 in its own folder, and its entry merged into zoo.json:
    python scripts/train_pretrained.py --out runs/zoo --jobs 2 --threads 1 --grad-clip 1.0 \
        --only sdsen-p4m sdsen plain
    python scripts/train_pretrained.py --out runs/zoo-p4m-lr5e-4 --jobs 1 --threads 1 \
        --grad-clip 1.0 --lr 5e-4 --only sdsen-p4m

On one H200, two calls of ``bash scripts/gpu_session.sh`` (it probes the speed of the models
training side by side and picks the steps that fit a device call). The first trained
``sdsen``, ``plain``, ``sdsen-p4m``, ``sdsen-vertical``, ``sdsen-plain-vertical`` and
``sdsen-p4m-vertical`` side by side, 600 steps each (``--recipe gpu --steps-scale 0.6`` of the
``gpu`` recipe, then 1,000 steps); of these only the three near-vertical ones are shipped. The
second trained ``sdsen``, ``plain`` and ``sdsen-p4m`` side by side for 1,700 steps
(``--steps-scale 1.7``), shipped renamed ``sdsen-gpu``, ``plain-gpu``, ``sdsen-p4m-gpu``
(``command_as_run`` in zoo.json). The same recipes under the shipped names (``gpu`` and
``gpu-study`` of :data:`RECIPES`)::

    python scripts/train_pretrained.py --out runs/gpu --lr 5e-4 --grad-clip 1.0 --jobs 3 \
        --threads 2 --device cuda --only sdsen-vertical sdsen-plain-vertical sdsen-p4m-vertical
    python scripts/train_pretrained.py --out runs/gpu --lr 5e-4 --grad-clip 1.0 --jobs 3 \
        --threads 2 --device cuda --only sdsen-gpu plain-gpu sdsen-p4m-gpu

The exact command of each model is in its card (``sdsen/weights/README.md``); ``--recipe NAME``
trains every selected model with another recipe of :data:`RECIPES`. ``sdsen-official`` is not
trained here: it is an ``sdsen train`` run of the official preset on a GPU, shipped by
``scripts/ship_run.py``.

Fine-tuning (``--init-weights``) starts a new run from the given
weights; under the name of a model already in zoo.json, the old entry is kept as ``init`` (move
the old run folder aside first, or the run resumes it). ``--val-folder`` scores a paired folder during training (a curve in
``metrics.jsonl``; ``benchmarks/results.py curve`` records it); the weights are never chosen by
it.

A smoke run of the whole pipeline in seconds::

    python scripts/train_pretrained.py --out /tmp/zoo --steps-scale 0.002 --only dsen plain
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

# name -> model config overrides, rain preset, angle range, recipe, role.
# "sdsen" is the official 8-stage network and "dsen" its one-stage version. The studies (plain
# vs p4 vs p4m, the equivariant decoder, the calibration ablation) share one cheaper recipe so
# that every comparison among them is at equal budget on a CPU; they are trained on near-vertical
# rain (the real validation rain is near vertical too) and tested on every angle.
RECIPES: dict[str, dict] = {
    "sdsen": {"batch": 4, "patch": 40, "steps": 600},
    "dsen": {"batch": 8, "patch": 48, "steps": 1000},
    "study": {"batch": 8, "patch": 48, "steps": 400},
    # the official batch and patch size on one GPU, fewer steps than its 20,000 (what fitted
    # the device time of a session: scripts/gpu_session.sh)
    "gpu": {"batch": 50, "patch": 64, "steps": 1700},
    "gpu-study": {"batch": 50, "patch": 64, "steps": 600},
}
WIDE, VERTICAL = (-30.0, 30.0), (-10.0, 10.0)
ZOO: dict[str, dict] = {
    "sdsen": {"model": {}, "preset": "v1-mixed", "angle_range": WIDE, "recipe": "sdsen",
              "role": "default: SDSEN p4, official config (8 stages, 130,998 parameters)"},
    "plain": {"model": {"group": "z2"}, "preset": "v1-mixed", "angle_range": WIDE,
              "recipe": "sdsen",
              "role": "parameter-matched plain CNN: the SDSEN structure with z2 convolutions "
                      "(width 20, 132,193 parameters), the recipe of sdsen"},
    "sdsen-p4m": {"model": {"group": "p4m", "channels": 7}, "preset": "v1-mixed",
                  "angle_range": WIDE, "recipe": "sdsen",
                  "role": "SDSEN p4m (channels 7 to match parameters: 128,071), the recipe of "
                          "sdsen at half its learning rate (5e-4): at 1e-3 its stage loop blew "
                          "up, with or without gradient clipping"},
    "dsen": {"model": {"arch": "dsen"}, "preset": "v1-mixed", "angle_range": WIDE, "recipe": "dsen",
             "role": "DSEN p4: one stage, no self-refinement (50,958 parameters)"},
    "sdsen-gpu": {"model": {}, "preset": "v1-mixed", "angle_range": WIDE, "recipe": "gpu",
                  "role": "SDSEN p4, official config, trained on one GPU with the official "
                          "batch (50 of 64x64) and learning rate (5e-4) for 1,700 steps"},
    "plain-gpu": {"model": {"group": "z2"}, "preset": "v1-mixed", "angle_range": WIDE,
                  "recipe": "gpu", "role": "the parameter-matched plain CNN (SDSEN with z2 "
                                           "convolutions, width 20), the recipe of sdsen-gpu"},
    "sdsen-p4m-gpu": {"model": {"group": "p4m", "channels": 7}, "preset": "v1-mixed",
                      "angle_range": WIDE, "recipe": "gpu",
                      "role": "SDSEN p4m (channels 7), the recipe of sdsen-gpu"},
    "sdsen-vertical": {"model": {}, "preset": "v1-mixed", "angle_range": VERTICAL,
                       "recipe": "gpu-study",
                       "role": "study at full scale: SDSEN p4 (8 stages), near-vertical rain, "
                               "official batch on one GPU"},
    "sdsen-plain-vertical": {"model": {"group": "z2"}, "preset": "v1-mixed",
                             "angle_range": VERTICAL, "recipe": "gpu-study",
                             "role": "study at full scale: the parameter-matched plain CNN (SDSEN "
                                     "with z2 convolutions, width 20), near-vertical rain, "
                                     "official batch on one GPU"},
    "sdsen-p4m-vertical": {"model": {"group": "p4m", "channels": 7}, "preset": "v1-mixed",
                           "angle_range": VERTICAL, "recipe": "gpu-study",
                           "role": "study at full scale: SDSEN p4m (channels 7), near-vertical "
                                   "rain, official batch on one GPU"},
    "dsen-vertical": {"model": {"arch": "dsen"}, "preset": "v1-mixed", "angle_range": VERTICAL,
                      "recipe": "study", "role": "study: DSEN p4, near-vertical rain"},
    "plain-vertical": {"model": {"arch": "dsen", "group": "z2"}, "preset": "v1-mixed",
                       "angle_range": VERTICAL, "recipe": "study",
                       "role": "study: parameter-matched plain CNN (DSEN with z2 "
                               "convolutions, width 20), near-vertical rain"},
    "dsen-p4m-vertical": {"model": {"arch": "dsen", "group": "p4m", "channels": 7},
                          "preset": "v1-mixed", "angle_range": VERTICAL, "recipe": "study",
                          "role": "study: DSEN p4m (channels 7 to match parameters), "
                                  "near-vertical rain"},
    "dsen-equivariant-vertical": {"model": {"arch": "dsen", "decoder": "equivariant"},
                                  "preset": "v1-mixed", "angle_range": VERTICAL, "recipe": "study",
                                  "role": "study: DSEN p4 with the equivariant decoder (exactly "
                                          "rotation-equivariant), near-vertical rain"},
    "dsen-uncalibrated": {"model": {"arch": "dsen"}, "preset": "uncalibrated",
                          "angle_range": VERTICAL, "recipe": "study",
                          "role": "ablation: as dsen-vertical, but trained on the rain "
                                  "synthesis before calibration"},
}


def recipe(name: str, scale: float = 1.0, override: str | None = None) -> dict:
    """Batch, patch size and steps of model ``name`` (steps multiplied by ``scale``).

    ``override`` names a recipe of :data:`RECIPES` used instead of the model's own.
    """
    r = dict(RECIPES[override or ZOO[name]["recipe"]])
    r["steps"] = max(2, round(r["steps"] * scale))
    return r


def _train_config(name: str, args: argparse.Namespace):
    from sdsen.train import TrainConfig

    r = recipe(name, args.steps_scale, args.recipe)
    return TrainConfig.preset(
        "official", steps=r["steps"], batch_size=r["batch"], patch_size=r["patch"], lr=args.lr,
        grad_clip=args.grad_clip,
        seed=args.seed, device=args.device, amp="auto",
        val_every=args.val_every or max(r["steps"] // 6, 1), val_images=args.val_images,
        ckpt_every=50, keep_every=0, log_every=10, log_images_every=0, tensorboard=True,
        num_workers=0, init_weights=args.init_weights,
    )


def _stream(name: str, args: argparse.Namespace):
    from sdsen.data import DeviceRainBatches

    spec, r = ZOO[name], recipe(name, args.steps_scale, args.recipe)
    return DeviceRainBatches("train", patch_size=r["patch"], batch_size=r["batch"],
                             preset=spec["preset"], angle_range=spec["angle_range"],
                             device=args.device, seed=args.seed, augment=True,
                             prefetch=torch.device(args.device).type == "cuda")


def _val_data(name: str, args: argparse.Namespace):
    """Synthetic crops of the val photo, or the first pairs of ``--val-folder``.

    The folder is only measured (a curve in metrics.jsonl): the shipped weights are the last
    step's, never chosen by it.
    """
    from sdsen.data import PairedImageFolder, SyntheticRainDataset

    if args.val_folder:
        return PairedImageFolder(args.val_folder)
    spec = ZOO[name]
    return SyntheticRainDataset("val", patch_size=96, length=args.val_images,
                                preset=spec["preset"], angle_range=spec["angle_range"],
                                seed=1234, crops="random")


def worker(args: argparse.Namespace) -> None:
    """Train one model of the zoo (run in its own process), then export its weights."""
    from sdsen.models import ModelConfig, build_model
    from sdsen.pretrained import save_weights
    from sdsen.train import LATEST, fit, load_checkpoint, model_from_checkpoint

    torch.set_num_threads(args.threads)
    name = args.worker
    cfg = _train_config(name, args)
    run_dir = Path(args.out) / "runs" / name
    t0 = time.time()
    if args.export_only:  # stop here: ship the last checkpoint as it is
        model = model_from_checkpoint(run_dir / LATEST)
        step = int(load_checkpoint(run_dir / LATEST)["step"])
        info = {"steps": step, "steps_planned": cfg.steps, "stopped_early": step < cfg.steps}
    else:
        model = build_model(ModelConfig(**ZOO[name]["model"]))
        hist = fit(model, _stream(name, args), _val_data(name, args), cfg, run_dir, resume=True,
                   progress=False,
                   max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
        info = {"steps": hist["final_step"], "steps_planned": cfg.steps,
                "stopped_early": hist["stopped_early"], "resumed_from": hist["start_step"]}
    save_weights(model, Path(args.out) / "weights" / f"{name}.pt")
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m.get("event") == "train"]
    info.update({"seconds_this_call": time.time() - t0, "train_config": cfg.to_dict(),
                 "train_seconds": max((m.get("elapsed_s", 0.0) for m in metrics), default=0.0),
                 "final_loss_stages": train[-1]["loss_stages"] if train else None})
    (run_dir / "done.json").write_text(json.dumps(info, indent=1))


def _hardware(device: str, threads: int, jobs: int) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {jobs} models training at once"
    return (f"CPU {platform.machine()} ({os.cpu_count()} cores), {threads} torch thread(s) "
            "per model")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder: runs/, weights/, zoo.json")
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {list(ZOO)}")
    ap.add_argument("--jobs", type=int, default=2, help="models trained at the same time")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per model")
    ap.add_argument("--recipe", choices=list(RECIPES), default=None,
                    help="train every model with this recipe instead of its own (e.g. gpu)")
    ap.add_argument("--steps-scale", type=float, default=1.0,
                    help="multiply every recipe's steps (e.g. 0.002 for a smoke run)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grad-clip", type=float, default=None,
                    help="clip the global gradient norm (TrainConfig.grad_clip; default none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--init-weights", default=None, metavar="NAME_OR_PATH",
                    help="fine-tune: start from these weights (shipped name, weights file or "
                         "checkpoint); needs exactly one --only model")
    ap.add_argument("--val-folder", default=None,
                    help="validate on the first --val-images pairs of this paired folder "
                         "(measured only, never used to pick weights) instead of synthetic "
                         "crops of the val photo")
    ap.add_argument("--val-images", type=int, default=4, help="images per validation")
    ap.add_argument("--val-every", type=int, default=0,
                    help="steps between validations (default: a sixth of the run)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="each model stops after this many minutes of training with its "
                         "checkpoint, and ships that (its card says it stopped early); the same "
                         "command again resumes the runs")
    ap.add_argument("--export-only", action="store_true",
                    help="do not train: export each model's latest.pt as it is (a run stopped "
                         "early by the time budget; its model card says so)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(ZOO)
    unknown = sorted(set(names) - set(ZOO))
    if unknown:
        ap.error(f"unknown model names {unknown}; choose from {list(ZOO)}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        ap.error(f"--max-minutes must be positive (got {args.max_minutes})")
    if args.init_weights and len(names) != 1:
        ap.error("--init-weights needs exactly one model in --only")
    common = [sys.executable, __file__, "--out", str(out), "--steps-scale", str(args.steps_scale),
              *(["--recipe", args.recipe] if args.recipe else []),
              "--lr", str(args.lr), "--seed", str(args.seed), "--device", args.device,
              *(["--grad-clip", str(args.grad_clip)] if args.grad_clip else []),
              "--threads", str(args.threads), "--val-images", str(args.val_images),
              "--val-every", str(args.val_every),
              *(["--init-weights", args.init_weights] if args.init_weights else []),
              *(["--val-folder", args.val_folder] if args.val_folder else []),
              *(["--export-only"] if args.export_only else []),
              *(["--max-minutes", str(args.max_minutes)] if args.max_minutes else [])]
    t_start = time.time()
    queue, running, codes, seconds = list(names), {}, {}, {}
    while queue or running:
        while queue and len(running) < args.jobs:
            name = queue.pop(0)
            log = open(out / f"train_{name}.log", "a")  # noqa: SIM115 (open while it runs)
            running[name] = (subprocess.Popen(common + ["--worker", name], stdout=log,
                                              stderr=subprocess.STDOUT), time.time())
            print(f"started {name}: {recipe(name, args.steps_scale, args.recipe)}", flush=True)
        for name, (proc, t0) in list(running.items()):
            if proc.poll() is not None:
                codes[name], seconds[name] = proc.returncode, time.time() - t0
                del running[name]
                print(f"finished {name}: exit {proc.returncode} after {seconds[name]:.0f} s",
                      flush=True)
        time.sleep(1)

    from sdsen.pretrained import load_weights

    command = " ".join(["python", "scripts/train_pretrained.py",
                        *(sys.argv[1:] if argv is None else argv)])
    made = {"hardware": _hardware(args.device, args.threads, min(args.jobs, len(names))),
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    report = {**made, "recipes": RECIPES, "commands": [], "models": {}}
    old = out / "zoo.json"
    if old.exists():  # keep what earlier calls trained and the commands that did it
        previous = json.loads(old.read_text())
        report["models"] = previous.get("models", {})
        report["commands"] = previous.get("commands", [])
        for entry in report["models"].values():  # where each was made (older files: per zoo)
            for key in made:
                entry.setdefault(key, previous.get(key))
    report["commands"].append(command)
    for name in names:
        done = out / "runs" / name / "done.json"
        weights = out / "weights" / f"{name}.pt"
        entry = {"role": ZOO[name]["role"], "preset": ZOO[name]["preset"],
                 "angle_range": ZOO[name]["angle_range"], "returncode": codes[name],
                 "command": command, **made}
        if done.exists():
            entry.update(json.loads(done.read_text()))
        if weights.exists() and codes[name] == 0:
            entry["model_config"] = asdict(load_weights(weights).config)
        if args.init_weights and name in report["models"]:
            # fine-tuned: keep the record of what it started from (the model trained before)
            entry["init"] = report["models"][name]
        report["models"][name] = entry
    report["wall_seconds"] = time.time() - t_start
    old.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v.get("returncode") for k, v in report["models"].items()}), flush=True)


if __name__ == "__main__":
    main()
