"""Shared helpers of the inference / training / scaling benchmarks (not part of the package).

Timing follows ``benchmarks/gconv.py``: repetitions of the compared functions are interleaved
(the order rotates at every repetition) so that a drift in machine load hits every side alike;
times are medians, ratios the median of the per-repetition ratios.

Peak memory of a CPU run is the growth of the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) across the run, measured in a fresh Python
subprocess per case (:func:`run_isolated`): torch's CPU allocator keeps no peak statistics and
``tracemalloc`` does not see torch's buffers. Large tensors are ``mmap``-ed by glibc and returned
to the system when freed, so the RSS follows the live tensors; the growth counts the input-size
dependent buffers (activations, outputs), not the model or the interpreter.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

__all__ = [
    "cpu_model",
    "header",
    "interleaved_times",
    "load_average",
    "maxrss_mib",
    "median_ratio",
    "run_isolated",
]


def cpu_model() -> str:
    """The ``model name`` of ``/proc/cpuinfo`` (what ``lscpu`` prints), or a fallback."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1-minute load average, formatted, or ``'?'``."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def header(title: str) -> str:
    """One comment line: title, UTC time, torch version, CPU, threads, load average."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        f"# {title}: {now:%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {cpu_model()} "
        f"({os.cpu_count()} cores), {torch.get_num_threads()} torch thread(s), "
        f"load average {load_average()}"
    )


def interleaved_times(
    fns: Sequence[Callable[[], object]],
    reps: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], list[list[float]]]:
    """Median seconds of each function, timed in interleaved, rotating order.

    ``clock`` is ``time.perf_counter`` (wall) by default; ``time.process_time`` (CPU time of
    the process) is far less disturbed by other jobs on a busy machine with one torch thread.

    Returns
    -------
    medians : list of float
        Median time of each function.
    samples : list of list of float
        All the times, ``samples[i][rep]``, for per-repetition ratios.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    n = len(fns)
    for rep in range(reps):
        for k in range(n):
            i = (k + rep) % n
            t0 = clock()
            fns[i]()
            samples[i].append(clock() - t0)
    return [statistics.median(s) for s in samples], samples


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of the per-repetition ratios ``a[i] / b[i]``."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def maxrss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_isolated(module: str, func: str, kwargs: dict, threads: int = 1) -> dict:
    """Run ``module.func(**kwargs)`` in a fresh Python subprocess and return its JSON dict.

    The benchmarks folder is on the child's ``sys.path``; the child sets ``threads`` torch
    threads before calling. ``func`` must return a JSON-serialisable dict.
    """
    here = Path(__file__).resolve().parent
    code = (
        "import json, sys, torch\n"
        f"sys.path.insert(0, {str(here)!r})\n"
        f"torch.set_num_threads({int(threads)})\n"
        f"import {module} as m\n"
        f"out = m.{func}(**json.loads(sys.argv[1]))\n"
        "print('@@RESULT@@' + json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@") :])
    raise RuntimeError(f"subprocess {module}.{func}({kwargs}) failed:\n{proc.stderr[-2000:]}")
