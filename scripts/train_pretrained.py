"""Train the shipped pretrained models (``sdsen/weights/``) side by side on one GPU.

Every model gets the same recipe (the official objective and optimiser, batch, patch size,
steps), trained only on the project's synthetic rain over the built-in training photos.
The run is sized to a wall-clock budget: a short probe times one training step of every model,
then the common step count is the largest that fits the budget with all models training at
once. Each model is a separate process (``--worker``) calling :func:`sdsen.train.fit`, so a run
cut short keeps its last atomic ``latest.pt`` and resumes exactly.

Usage (what produced the shipped weights; see ``sdsen/weights/README.md``)::

    python scripts/train_pretrained.py --out OUT --budget 420 --device cuda

A CPU smoke run of the whole pipeline::

    python scripts/train_pretrained.py --out /tmp/zoo --steps 2 --batch 2 --patch 32 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

# name -> model config overrides, rain preset, angle range, role
ZOO: dict[str, dict] = {
    "sdsen": dict(model={}, preset="mixed", angle_range=(-30.0, 30.0),
                  role="default: SDSEN p4, official config"),
    "dsen": dict(model={"arch": "dsen"}, preset="mixed", angle_range=(-30.0, 30.0),
                 role="DSEN: one stage, no self-refinement"),
    "plain": dict(model={"group": "z2"}, preset="mixed", angle_range=(-30.0, 30.0),
                  role="parameter-matched plain CNN (z2) with the SDSEN architecture"),
    "sdsen-p4m": dict(model={"group": "p4m", "channels": 7}, preset="mixed",
                      angle_range=(-30.0, 30.0),
                      role="SDSEN p4m (rotations and mirrors), channels 7 to match parameters"),
    "sdsen-uncalibrated": dict(model={}, preset="uncalibrated", angle_range=None,
                               role="ablation: SDSEN trained on the rain synthesis before "
                                    "calibration"),
    "sdsen-vertical": dict(model={}, preset="mixed", angle_range=(-10.0, 10.0),
                           role="generalization study: p4, near-vertical rain only"),
    "plain-vertical": dict(model={"group": "z2"}, preset="mixed", angle_range=(-10.0, 10.0),
                           role="generalization study: plain CNN, near-vertical rain only"),
    "sdsen-p4m-vertical": dict(model={"group": "p4m", "channels": 7}, preset="mixed",
                               angle_range=(-10.0, 10.0),
                               role="generalization study: p4m, near-vertical rain only"),
    "sdsen-equivariant-vertical": dict(model={"decoder": "equivariant"}, preset="mixed",
                                       angle_range=(-10.0, 10.0),
                                       role="generalization study: p4 with the equivariant "
                                            "decoder, near-vertical rain only"),
}


def _train_config(args: argparse.Namespace, steps: int):
    from sdsen.train import TrainConfig

    return TrainConfig.preset(
        "official", steps=steps, batch_size=args.batch, patch_size=args.patch, lr=args.lr,
        seed=args.seed, device=args.device, amp=args.amp, val_every=max(steps // 4, 1),
        val_images=4, ckpt_every=args.ckpt_every, keep_every=0, log_every=10,
        log_images_every=0, tensorboard=True,
    )


def _stream(args: argparse.Namespace, spec: dict):
    from sdsen.data import DeviceRainBatches

    return DeviceRainBatches("train", patch_size=args.patch, batch_size=args.batch,
                             preset=spec["preset"], angle_range=spec["angle_range"],
                             device=args.device, seed=args.seed, augment=True)


def _val_data(spec: dict):
    from sdsen.data import SyntheticRainDataset

    return SyntheticRainDataset("val", patch_size=128, length=4, preset=spec["preset"],
                                angle_range=spec["angle_range"], seed=1234, crops="random")


def _model(spec: dict):
    from sdsen.models import ModelConfig, build_model

    return build_model(ModelConfig(**spec["model"]))


def probe(args: argparse.Namespace, names: list[str], amp_mode: str | None = None
          ) -> dict[str, float]:
    """Seconds per training step of every model (alone on the device), after warm-up."""
    from sdsen.train.loop import resolve_amp, stage_loss

    device = torch.device(args.device)
    amp = resolve_amp(amp_mode or args.amp, device)
    times = {}
    for name in names:
        spec = ZOO[name]
        model = _model(spec).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        stream = iter(_stream(args, spec))
        torch.backends.cudnn.benchmark = device.type == "cuda"
        for i in range(args.probe_steps + 3):
            if i == 3:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            rainy, clean = next(stream)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss, _ = stage_loss(model(rainy), rainy, clean)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times[name] = (time.perf_counter() - t0) / args.probe_steps
        print(f"probe {name:28s} amp={amp} {times[name] * 1e3:8.1f} ms/step", flush=True)
    return times


def worker(args: argparse.Namespace) -> None:
    """Train one model of the zoo (run in its own process)."""
    from sdsen.pretrained import save_weights
    from sdsen.train import fit

    spec = ZOO[args.worker]
    model = _model(spec)
    cfg = _train_config(args, args.steps)
    run_dir = Path(args.out) / "runs" / args.worker
    t0 = time.time()
    fit(model, _stream(args, spec), _val_data(spec), cfg, run_dir, resume=True, progress=False)
    save_weights(model, Path(args.out) / "weights" / f"{args.worker}.pt")
    info = {"seconds": time.time() - t0, "steps": cfg.steps, "train_config": cfg.to_dict()}
    (run_dir / "done.json").write_text(json.dumps(info, indent=1))


def _hardware(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (one GPU, processes side by side)"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (runs/, weights/, zoo.json)")
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {list(ZOO)}")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="wall-clock seconds for training all models side by side")
    ap.add_argument("--steps", type=int, default=None, help="fixed step count (skips probing)")
    ap.add_argument("--max-steps", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--probe-steps", type=int, default=6)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--efficiency", type=float, default=0.9,
                    help="fraction of the time left after probing planned for training steps")
    ap.add_argument("--startup", type=float, default=25.0,
                    help="seconds reserved for the worker processes' start-up")
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
    t_start = time.time()
    times = None
    if args.steps is None:
        times = probe(args, names)
        left = t_start + args.budget - time.time() - args.startup
        steps = int(left * args.efficiency / sum(times.values()))
        steps = max(10, min(steps, args.max_steps))
    else:
        steps = args.steps
    print(f"training {len(names)} models for {steps} steps each", flush=True)
    common = [sys.executable, __file__, "--out", str(out), "--steps", str(steps),
              "--batch", str(args.batch), "--patch", str(args.patch), "--lr", str(args.lr),
              "--seed", str(args.seed), "--amp", args.amp, "--device", args.device,
              "--ckpt-every", str(args.ckpt_every)]
    procs = {}
    for name in names:
        log = open(out / f"train_{name}.log", "w")
        procs[name] = subprocess.Popen(common + ["--worker", name], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    deadline = t_start + args.budget
    while any(p.poll() is None for p in procs.values()):
        if time.time() > deadline:
            for name, p in procs.items():
                if p.poll() is None:
                    print(f"budget reached: stopping {name} (its latest.pt is kept)", flush=True)
                    os.killpg(p.pid, signal.SIGTERM)
            time.sleep(5)
            break
        time.sleep(2)

    from sdsen.pretrained import save_weights
    from sdsen.train import model_from_checkpoint

    fp32 = probe(args, ["sdsen"], "off") if times and args.device.startswith("cuda") else None
    report = {"steps_planned": steps, "probe_seconds_per_step": times,
              "probe_seconds_per_step_fp32": fp32, "batch": args.batch, "patch": args.patch,
              "hardware": _hardware(args.device), "torch": torch.__version__,
              "command": " ".join(["python", "scripts/train_pretrained.py", *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d"), "models": {}}
    for name in names:
        run_dir = out / "runs" / name
        done = run_dir / "done.json"
        entry = {"role": ZOO[name]["role"], "model_config": None,
                 "preset": ZOO[name]["preset"], "angle_range": ZOO[name]["angle_range"],
                 "returncode": procs[name].returncode}
        if done.exists():
            entry.update(json.loads(done.read_text()))
        elif (run_dir / "latest.pt").exists():
            model = model_from_checkpoint(run_dir / "latest.pt")
            save_weights(model, out / "weights" / f"{name}.pt")
            payload = torch.load(run_dir / "latest.pt", map_location="cpu", weights_only=True)
            entry.update({"steps": int(payload["step"]), "stopped_early": True,
                          "train_config": payload.get("train_config")})
        weights = out / "weights" / f"{name}.pt"
        if weights.exists():
            from sdsen.pretrained import load_weights

            entry["model_config"] = asdict(load_weights(weights).config)
        report["models"][name] = entry
    report["wall_seconds"] = time.time() - t_start
    (out / "zoo.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: (v.get("steps"), v.get("returncode")) for k, v in
                      report["models"].items()}), flush=True)


if __name__ == "__main__":
    main()
