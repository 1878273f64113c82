"""Run records: ``metrics.jsonl``, TensorBoard events, image grids, the run-folder marker."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..persist import write_text_atomic

__all__ = [
    "CONFIG_FILE",
    "DATA_FILE",
    "METRICS_FILE",
    "RUN_MARKER",
    "RunLogger",
    "TensorBoardRecord",
    "config_changes",
    "is_run_dir",
    "make_grid",
    "mark_run_dir",
    "read_metrics",
    "read_tensorboard",
    "refuse_foreign_dir",
    "validation_trend",
    "write_json",
    "write_run_files",
]

#: File that marks a folder as an sdsen run folder (``sdsen clean`` refuses folders without it).
RUN_MARKER = ".sdsen-run"
#: One JSON object per line, one line per log event.
METRICS_FILE = "metrics.jsonl"
#: Train and model configs of the run.
CONFIG_FILE = "config.json"
#: The data options of a run (written by ``sdsen train``: what a resumed run must train on).
DATA_FILE = "data.json"
#: Files a run writes: in a folder without the marker, a clash.
_RECORD_NAMES = (CONFIG_FILE, METRICS_FILE, DATA_FILE, "latest.pt", "step_*.pt",
                 "events.out.tfevents.*")


def make_grid(
    images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile a batch of images into one image (a dependency-free ``torchvision`` ``make_grid``).

    Parameters
    ----------
    images : torch.Tensor
        Shape ``(N, C, H, W)``.
    nrow : int
        Images per row.
    padding : int
        Pixels between and around images.
    pad_value : float
        Value of the padding pixels.

    Returns
    -------
    torch.Tensor
        Shape ``(C, rows * (H + padding) + padding, ncol * (W + padding) + padding)`` with
        ``ncol = min(nrow, N)`` and ``rows = ceil(N / ncol)``.

    Examples
    --------
    >>> import torch
    >>> make_grid(torch.zeros(5, 3, 4, 6), nrow=3, padding=1).shape
    torch.Size([3, 11, 22])
    """
    if images.dim() != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    ncol = max(1, min(nrow, n))
    rows = math.ceil(n / ncol)
    out = images.new_full(
        (c, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value
    )
    for i in range(n):
        r, col = divmod(i, ncol)
        y0 = padding + r * (h + padding)
        x0 = padding + col * (w + padding)
        out[:, y0 : y0 + h, x0 : x0 + w] = images[i]
    return out


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`sdsen.train.fit` (marker + config.json)."""
    p = Path(path)
    return p.is_dir() and (p / RUN_MARKER).is_file() and (p / CONFIG_FILE).is_file()


def refuse_foreign_dir(run_dir: str | os.PathLike, option: str = "run_dir") -> None:
    """Refuse a run folder whose files a run would overwrite or later take for its own.

    A missing folder, a folder holding the run marker (a run to resume or extend) and a folder
    without any file named like a run's records pass (other files are left alone, and
    ``sdsen clean`` removes only records); a file, or a folder without the marker that holds a
    ``config.json``, ``data.json``, ``metrics.jsonl``, ``latest.pt``, ``step_*.pt`` or TensorBoard
    event file, do not.

    Parameters
    ----------
    run_dir : str or os.PathLike
        The run folder about to be written.
    option : str
        How the caller names it in errors (``"run_dir"``, ``"--run-dir"``).

    Raises
    ------
    FileExistsError
        Naming the folder, the clashing files and the fix; nothing has been written.

    Examples
    --------
    >>> refuse_foreign_dir("/nonexistent/run")
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{option} {path} is a file; choose a new or empty {option}")
    if not path.is_dir() or (path / RUN_MARKER).is_file():
        return
    clash = sorted({p.name for pattern in _RECORD_NAMES for p in path.glob(pattern)})
    if clash:
        more = f" and {len(clash) - 3} more" if len(clash) > 3 else ""
        raise FileExistsError(
            f"{option} {path} holds files named like a run's records but not written by sdsen "
            f"train ({', '.join(clash[:3])}{more}); choose a new or empty {option}"
        )


def mark_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` with its marker (first of the run's files; an existing one is kept)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    marker = run_dir / RUN_MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"kind": "sdsen-run", "created": time.time()}) + "\n")


def write_run_files(run_dir: Path, config: dict[str, Any]) -> None:
    """Create ``run_dir`` with its marker and ``config.json`` (atomically replaced)."""
    mark_run_dir(run_dir)
    write_json(run_dir / CONFIG_FILE, config)


def write_json(path: Path, data: Any, *, indent: int = 2, sort_keys: bool = True) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`sdsen.persist.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")


def read_metrics(run_dir: str | os.PathLike, event: str | None = None) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` of a run (optionally only one ``event`` kind: 'train', 'val').

    Examples
    --------
    >>> read_metrics("/nonexistent")
    []
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if event is None or r.get("event") == event]


def config_changes(run_dir: str | os.PathLike) -> list[tuple[int, dict[str, list[Any]]]]:
    """Settings changed on resume, as ``[(step, {key: [old, new]}), ...]`` in run order.

    Read from the ``resume`` lines of ``metrics.jsonl``: with ``config.json`` (the latest
    settings) they give the recipe as run. Left out: resumes that changed nothing, and resumes
    whose steps were undone (a later ``resume`` or ``rollback`` line at the same or an earlier
    step).

    Examples
    --------
    >>> config_changes("/nonexistent")
    []
    """
    rows = [r for r in read_metrics(run_dir) if r.get("event") in ("resume", "rollback")]
    return [
        (int(r["step"]), r["changed"]) for i, r in enumerate(rows)
        if r["event"] == "resume" and r.get("changed")
        and not any(int(later["step"]) <= int(r["step"]) for later in rows[i + 1:])
    ]


def validation_trend(
    run: str | os.PathLike | list[dict[str, Any]], key: str = "psnr_y", tail: float = 0.2
) -> dict[str, Any]:
    """Where a run's validation curve stands: the last stage's ``key`` and its recent slope.

    The slope is a least-squares line through the validations of the last ``tail`` share of
    the steps run, reported as its change over that span (so ``0.05`` means the curve rose by
    0.05 over the last 20 % of the steps: flat, for PSNR in dB).

    Parameters
    ----------
    run
        A run folder or its ``metrics.jsonl`` rows.
    key
        ``'psnr_y'``, ``'ssim_y'``, ``'psnr'`` or ``'ssim'``.
    tail
        Share of the steps the slope covers.

    Returns
    -------
    dict
        ``step`` and ``value`` of the last validation, ``stages`` it scored, ``best_step`` and
        ``best`` (highest value), ``tail_change`` (None with fewer than 3 validations in the
        tail) and ``tail_from`` (the first step of the tail).

    Examples
    --------
    >>> rows = [{"event": "val", "step": s, "psnr_y": [20 + s / 100]} for s in range(100, 1001, 100)]
    >>> t = validation_trend(rows)
    >>> t["value"], t["tail_from"], round(t["tail_change"], 3)
    (30.0, 800, 2.0)
    """
    rows = read_metrics(run, "val") if isinstance(run, str | os.PathLike) else [
        r for r in run if r.get("event") == "val"]
    by_step = {int(r["step"]): r for r in rows if r.get(key)}
    if not by_step:
        raise ValueError(f"no validation line with {key!r} in the run's metrics")
    steps = sorted(by_step)
    values = [float(by_step[s][key][-1]) for s in steps]
    best = max(range(len(steps)), key=values.__getitem__)
    start = steps[-1] * (1 - tail)
    tail_steps = [s for s in steps if s >= start]
    change = None
    if len(tail_steps) >= 3:
        x = np.asarray(tail_steps, dtype=np.float64)
        y = np.asarray(values[-len(tail_steps):], dtype=np.float64)
        slope = np.polyfit(x, y, 1)[0]
        change = float(slope * (steps[-1] - start))
    return {"step": steps[-1], "value": values[-1], "stages": len(by_step[steps[-1]][key]),
            "best_step": steps[best], "best": values[best], "tail_change": change,
            "tail_from": round(start)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


class RunLogger:
    """Writes ``metrics.jsonl`` and (optionally) TensorBoard events; a no-op when disabled.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.
    enabled : bool
        False on non-zero ranks: nothing is written.
    tensorboard : bool
        Also write TensorBoard events (skipped with a warning if tensorboard is missing).
    start_step : int
        On resume, lines of ``metrics.jsonl`` after this step (written by the interrupted run
        after its last checkpoint) are dropped, and TensorBoard purges them too.
    """

    def __init__(
        self, run_dir: Path, enabled: bool = True, tensorboard: bool = True, start_step: int = 0
    ) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        path = run_dir / METRICS_FILE
        if path.exists():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= start_step
            ]
            path.write_text("".join(line + "\n" for line in kept))
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if tensorboard:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from torch.utils.tensorboard import SummaryWriter
                # events up to the checkpoint's step are kept (as in metrics.jsonl); those after
                # it, written by the interrupted run, are purged
                self.writer = SummaryWriter(
                    log_dir=str(run_dir), purge_step=start_step + 1 if start_step > 0 else None
                )
            except ImportError:
                warnings.warn(
                    "tensorboard is not installed; only metrics.jsonl is written", stacklevel=2
                )

    def event(self, kind: str, step: int, **values: Any) -> None:
        """Append one JSON line ``{"event": kind, "step": step, "time": ..., **values}``."""
        if not self.enabled:
            return
        row = {"event": kind, "step": int(step), "time": round(time.time(), 3), **values}
        self._file.write(json.dumps(_jsonable(row)) + "\n")
        self._file.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        """A TensorBoard scalar."""
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, img: torch.Tensor, step: int) -> None:
        """A TensorBoard image of shape ``(3, H, W)`` in ``[0, 1]``."""
        if self.writer is not None:
            self.writer.add_image(tag, img.detach().float().clamp(0, 1).cpu(), step)

    def close(self) -> None:
        """Flush and close the files."""
        if not self.enabled:
            return
        self._file.close()
        if self.writer is not None:
            self.writer.close()


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class TensorBoardRecord:
    """What the TensorBoard event files of a run folder hold, read back without a server.

    Attributes
    ----------
    scalars
        ``{tag: [(step, value), ...]}``, e.g. ``"train/loss"``, ``"val/psnr_y_stage2"`` (PSNR,
        Y protocol, after the third stage).
    images
        ``{tag: [(step, image), ...]}``, each image ``(H, W, 3)`` uint8 RGB, as TensorBoard
        shows it.
    """

    scalars: dict[str, list[tuple[int, float]]]
    images: dict[str, list[tuple[int, np.ndarray]]]

    def table(self) -> str:
        """Markdown table, one row per tag: kind, points, first and last step, last value."""
        lines = ["| tag | kind | points | steps | last value |", "|---|---|---:|---|---:|"]
        for tag, points in sorted(self.scalars.items()):
            lines.append(f"| `{tag}` | scalar | {len(points)} | {points[0][0]}-{points[-1][0]} "
                         f"| {points[-1][1]:.4g} |")
        for tag, shots in sorted(self.images.items()):
            h, w = shots[-1][1].shape[:2]
            lines.append(f"| `{tag}` | image | {len(shots)} | {shots[0][0]}-{shots[-1][0]} "
                         f"| {h} x {w} px (H x W) |")
        return "\n".join(lines)


def read_tensorboard(run_dir: str | os.PathLike) -> TensorBoardRecord:
    """Every scalar and image a run logged for TensorBoard (what ``tensorboard --logdir`` shows).

    Parameters
    ----------
    run_dir
        A run folder of :func:`sdsen.train.fit` trained with ``TrainConfig.tensorboard=True``.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` holds no event file (TensorBoard logging was off, or not a run folder).
    """
    from tensorboard.backend.event_processing.event_accumulator import (
        IMAGES,
        SCALARS,
        EventAccumulator,
    )

    run_dir = Path(run_dir)
    if not any(run_dir.glob("events.out.tfevents.*")):
        raise FileNotFoundError(
            f"no TensorBoard event file in {run_dir}: train with TrainConfig(tensorboard=True) "
            "(the default; `sdsen train` without --no-tensorboard)"
        )
    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0, IMAGES: 0})  # 0: keep all
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [(e.step, float(e.value)) for e in acc.Scalars(t)] for t in tags["scalars"]}
    images = {}
    for t in tags["images"]:
        images[t] = [
            (e.step, cv2.cvtColor(cv2.imdecode(np.frombuffer(e.encoded_image_string, np.uint8),
                                               cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
            for e in acc.Images(t)
        ]
    return TensorBoardRecord(scalars, images)
