"""Training-data throughput: synthetic rain batches of 50 64x64 patches, in patches per second.

Three paths, all on the built-in ``train`` photos with the ``mixed`` rain preset:

- ``SyntheticRainDataset`` through a ``DataLoader`` with 0 workers (the main process makes every
  patch) and with 2 workers;
- ``DeviceRainBatches`` on the CPU, and on CUDA when a GPU is present (crops by indexing and
  :func:`sdsen.rain.synthesize_batch` on the whole batch, no workers).

Each row reports patches per second over the timed batches; the first batch (worker start-up,
lazy initialisation) is fetched before the clock starts. With workers, batches are made in
parallel (each worker makes whole batches), so use several timed batches per worker.

Usage::

    python benchmarks/data_loading.py           # about a minute on 2 CPU cores
    python benchmarks/data_loading.py --quick   # smoke test
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from sdsen.data import DeviceRainBatches, SyntheticRainDataset

__all__ = ["BATCH", "PATCH", "bench_device", "bench_loader", "main"]

BATCH = 50
PATCH = 64


def _timed(it: Iterator, batches: int, sync: bool = False) -> float:
    """Patches/s over ``batches`` batches of ``it``, timed from the arrival of a first batch.

    The first batch (worker start-up, lazy initialisation) is not timed; the rate is the number
    of patches in the following ``batches`` batches over the time they took to arrive.
    """
    next(it)
    if sync:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        rainy, _ = next(it)
        n += rainy.shape[0]
    if sync:
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def bench_loader(workers: int, batches: int, threads: int | None = None) -> float:
    """Patches/s of ``SyntheticRainDataset`` through a DataLoader with ``workers`` workers.

    ``threads`` sets ``torch.set_num_threads`` in the main process for the run (restored after);
    DataLoader workers always use one thread each.
    """
    n = BATCH * (batches + 1)
    ds = SyntheticRainDataset("train", patch_size=PATCH, length=n, preset="mixed", seed=0)
    loader = DataLoader(ds, batch_size=BATCH, num_workers=workers, persistent_workers=False)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        return _timed(iter(loader), batches)
    finally:
        torch.set_num_threads(before)


def bench_device(device: str, batches: int) -> float:
    """Patches/s of ``DeviceRainBatches`` on ``device``."""
    stream = DeviceRainBatches(
        "train", patch_size=PATCH, batch_size=BATCH, preset="mixed", device=device, seed=0
    )
    return _timed(iter(stream), batches, sync=device.startswith("cuda"))


def main(argv: list[str] | None = None) -> None:
    """Print the throughput table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches (smoke test)")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per row")
    args = parser.parse_args(argv)
    batches = args.batches or (2 if args.quick else 6)

    rows = [
        ("SyntheticRainDataset, DataLoader 0 workers", "cpu", lambda: bench_loader(0, batches)),
        (
            "SyntheticRainDataset, DataLoader 0 workers, 1 torch thread",
            "cpu",
            lambda: bench_loader(0, batches, threads=1),
        ),
        ("SyntheticRainDataset, DataLoader 2 workers", "cpu", lambda: bench_loader(2, batches)),
        ("DeviceRainBatches", "cpu", lambda: bench_device("cpu", batches)),
    ]
    if torch.cuda.is_available():
        rows.append(("DeviceRainBatches", "cuda", lambda: bench_device("cuda", batches)))
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(
        f"# data loading, {datetime.date.today()}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads{gpu}"
    )
    print(f"batches of {BATCH} patches {PATCH}x{PATCH}, preset 'mixed', {batches} timed batches\n")
    print("| path | device | patches/s |")
    print("|---|---|---|")
    for label, device, fn in rows:
        print(f"| {label} | {device} | {fn():.0f} |", flush=True)


if __name__ == "__main__":
    main()
