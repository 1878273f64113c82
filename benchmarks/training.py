"""Training throughput of the official SDSEN on the CPU, and data synthesis against it.

For each training preset (``quick``, ``cpu``, ``official`` of :class:`sdsen.train.TrainConfig`:
its batch size and patch size; the model is always the official SDSEN) this script times

- a **training step** as :func:`sdsen.train.fit` runs it on the CPU: forward, the official loss
  :func:`sdsen.train.stage_loss`, ``zero_grad``, backward, Adam step (no scheduler, logging,
  validation or checkpoints; no AMP on the CPU);
- the **data** for one batch of the same size, preset ``mixed``: ``DeviceRainBatches`` on the
  CPU (crops by indexing + :func:`sdsen.rain.synthesize_batch`, what
  ``scripts/train_pretrained.py`` feeds) and ``SyntheticRainDataset`` through a ``DataLoader``
  with 0 workers (per-patch synthesis in the main process, the slowest path);

and prints patches per second and the ratio data time / step time (the share of a step the
data would add if it were not overlapped). Data batches and steps alternate (data, step, data,
step, ...), one untimed warm-up of each first; times are medians. The official step (batch 50
of 64 x 64) takes about a minute here, so the default run times two of them.

Usage::

    python benchmarks/training.py           # ~4 CPU-minutes at 1 thread
    python benchmarks/training.py --quick   # smoke test (official batch cut to 2)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from _timing import header

from sdsen.data import DeviceRainBatches, SyntheticRainDataset
from sdsen.models import ModelConfig, build_model
from sdsen.train import TrainConfig, stage_loss

__all__ = ["bench_preset", "data_batch_fns", "main"]


def data_batch_fns(batch: int, patch: int, seed: int = 0) -> dict[str, object]:
    """Callables returning one ``(rainy, clean)`` batch, per data path."""
    stream = iter(
        DeviceRainBatches(
            "train", patch_size=patch, batch_size=batch, preset="mixed", device="cpu", seed=seed
        )
    )
    ds = SyntheticRainDataset("train", patch_size=patch, length=10**6, preset="mixed", seed=seed)
    loader = iter(torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=0))
    return {"DeviceRainBatches": lambda: next(stream), "SyntheticRainDataset": lambda: next(loader)}


def bench_preset(
    preset: str, steps: int, batch: int | None = None, model: ModelConfig | None = None
) -> dict:
    """Median step time and data time per batch for one preset (see the module docstring).

    Returns
    -------
    dict
        ``batch``, ``patch``, ``step_s`` (median), ``step_all`` (every timed step),
        ``data_s`` (``{path: median seconds per batch}``).
    """
    cfg = TrainConfig.preset(preset)
    batch = batch or cfg.batch_size
    patch = cfg.patch_size
    torch.manual_seed(0)
    net = build_model(model or ModelConfig()).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    data = data_batch_fns(batch, patch)
    rainy, clean = data["DeviceRainBatches"]()

    def step() -> None:
        stages = net(rainy)
        loss, _ = stage_loss(stages, rainy, clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # the host sync fit makes once per step

    step_t: list[float] = []
    data_t: dict[str, list[float]] = {k: [] for k in data}
    warm = 1 if preset != "official" else 0  # an official step is a minute: no warm-up
    for i in range(warm + steps):
        for name, fn in data.items():
            t0 = time.perf_counter()
            fn()
            if i >= warm:
                data_t[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        step()
        if i >= warm:
            step_t.append(time.perf_counter() - t0)
    return {
        "batch": batch,
        "patch": patch,
        "step_s": statistics.median(step_t),
        "step_all": step_t,
        "data_s": {k: statistics.median(v) for k, v in data_t.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """Print the tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, official batch 2")
    parser.add_argument("--official-steps", type=int, default=2, help="timed official steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(header("training benchmark, official SDSEN"))
    cmd_args = sys.argv[1:] if argv is None else argv
    print(f"command: python benchmarks/training.py {' '.join(cmd_args)}".rstrip())
    plan = [
        ("quick", 2 if args.quick else 8, None),
        ("cpu", 2 if args.quick else 6, None),
        ("official", 1 if args.quick else args.official_steps, 2 if args.quick else None),
    ]
    print(
        "\n| preset | batch x patch | step (s) | patches/s | patch px/s "
        "| DeviceRainBatches (ms/batch) | data / step | SyntheticRainDataset, 0 workers "
        "(ms/batch) | data / step |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for preset, steps, batch in plan:
        r = bench_preset(preset, steps, batch)
        b, p, s = r["batch"], r["patch"], r["step_s"]
        dev, syn = r["data_s"]["DeviceRainBatches"], r["data_s"]["SyntheticRainDataset"]
        label = preset + (" (batch cut)" if batch else "")
        print(
            f"| {label} | {b} x {p}x{p} | {s:.3f} | {b / s:.2f} | {b * p * p / s:.0f} "
            f"| {1e3 * dev:.1f} | {100 * dev / s:.2f} % | {1e3 * syn:.1f} | {100 * syn / s:.2f} % |",
            flush=True,
        )
        if preset == "official":
            steps_txt = ", ".join(f"{t:.1f}" for t in r["step_all"])
            print(
                f"\nofficial steps timed (s): {steps_txt}; 20,000 steps at the median: "
                f"{20000 * s / 3600:.0f} h on this CPU"
            )
    print(f"\n# done, {header('end').rsplit(', ', 1)[1]}")


if __name__ == "__main__":
    main()
