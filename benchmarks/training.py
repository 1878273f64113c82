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

``--amp-sweep`` times instead the official preset's training step with each mixed-precision
setting side by side (:func:`bench_amp`: bf16 and fp16 autocast and float32, one model and Adam
per setting from the same initial weights, the same batch, steps interleaved in rotating order
after warm-up) and prints ms per step, the projected time of the 20,000 steps and the ratio to
float32 (median of the per-round ratios). It is meant for a GPU (``--device cuda``:
``cudnn.benchmark`` on, as :func:`sdsen.train.fit` sets it; fp16 with a ``GradScaler``, as
``fit`` does). It times the model's compute alone: no data synthesis, no gradient clipping or
logging, the loss inside autocast. On a CPU it runs too, as a smoke test only (``fit`` never
autocasts on a CPU): there, on this AMD EPYC with one thread, a bf16 step took 0.6x the float32
step and an fp16 step about 60x, so the smoke test below takes minutes.

Usage::

    python benchmarks/training.py           # ~4 CPU-minutes at 1 thread
    python benchmarks/training.py --quick   # smoke test (official batch cut to 2)
    python benchmarks/training.py --amp-sweep --device cuda           # AMP on and off, a GPU
    python benchmarks/training.py --amp-sweep --device cpu --batch 1 --amp-steps 1  # minutes
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
from _timing import header

from sdsen.data import DeviceRainBatches, SyntheticRainDataset
from sdsen.models import ModelConfig, build_model
from sdsen.train import TrainConfig, stage_loss

__all__ = ["AMP_MODES", "bench_amp", "bench_preset", "data_batch_fns", "main"]

#: ``--amp-sweep`` settings: name -> autocast dtype (``None``: float32, no autocast).
AMP_MODES: dict[str, torch.dtype | None] = {
    "bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


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


def bench_amp(device: str, steps: int, batch: int | None = None, warmup: int = 3,
              model: ModelConfig | None = None) -> dict[str, list[float]]:
    """Seconds of each official-preset training step per :data:`AMP_MODES` setting.

    One model (the official SDSEN unless ``model``) and one Adam per setting, all from the same
    initial weights, train on the same ``(batch, 3, 64, 64)`` batch; after ``warmup`` untimed
    rounds the settings take turns in rotating order, each step ending with a device
    synchronisation so that no work spills into the next timing.

    Returns
    -------
    dict
        ``{setting: [seconds of each timed step]}``.
    """
    from _timing import interleaved_times

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as fit sets it
    cfg = TrainConfig.preset("official")
    torch.manual_seed(0)
    first = build_model(model or ModelConfig())
    rainy, clean = DeviceRainBatches("train", patch_size=cfg.patch_size,
                                     batch_size=batch or cfg.batch_size, preset="mixed",
                                     device=dev, seed=0).batch(0)

    def make_step(dtype: torch.dtype | None):
        net = copy.deepcopy(first).to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)

        def step() -> None:
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                stages = net(rainy)
                loss, _ = stage_loss(stages, rainy, clean)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            float(loss.detach())  # the host sync fit makes once per step
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        return step

    _, samples = interleaved_times([make_step(d) for d in AMP_MODES.values()], steps, warmup)
    return dict(zip(AMP_MODES, samples, strict=True))


def _amp_table(times: dict[str, list[float]]) -> str:
    """Markdown: ms per step, 20,000-step projection and ratio to float32 (the median of the
    per-round ratios) per setting."""
    from _timing import median_ratio

    lines = ["| autocast | ms / step (median) | 20,000 steps | / float32 |", "|---|---:|---:|---:|"]
    for name, t in times.items():
        m = statistics.median(t)
        lines.append(f"| {name} | {1e3 * m:.1f} | {20000 * m / 60:.1f} min "
                     f"| {median_ratio(t, times['off']):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, official batch 2")
    parser.add_argument("--official-steps", type=int, default=2, help="timed official steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--amp-sweep", action="store_true",
                        help="time the official step with bf16 / fp16 autocast and float32")
    parser.add_argument("--device", default="cpu", help="--amp-sweep's device (default cpu)")
    parser.add_argument("--amp-steps", type=int, default=20,
                        help="--amp-sweep: timed steps per setting (default 20)")
    parser.add_argument("--batch", type=int, default=None,
                        help="--amp-sweep: batch size (default the official 50)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(header("training benchmark, official SDSEN"))
    cmd_args = sys.argv[1:] if argv is None else argv
    print(f"command: python benchmarks/training.py {' '.join(cmd_args)}".rstrip())
    if args.amp_sweep:
        dev = torch.device(args.device)
        where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
        print(f"\nofficial preset step, batch {args.batch or 50} of 64x64, on {where}:\n")
        print(_amp_table(bench_amp(args.device, args.amp_steps, args.batch)))
        return
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
