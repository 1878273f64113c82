"""Evaluation: per-image, per-stage PSNR / SSIM in both protocols, CSV and saved images.

A results folder written with ``save_dir`` (``sdsen evaluate --save-images DIR``) holds::

    DIR/results.csv           one row per (image, stage), stage 'input' = rainy vs clean
    DIR/summary.json          means per stage, protocols, model config
    DIR/rainy/NAME.png        the input
    DIR/clean/NAME.png        the ground truth
    DIR/stage_T/NAME.png      the derained estimate after T stages (T = 1 .. number of stages)

and :func:`sdsen.gallery.write_gallery` turns it into a static HTML page (``sdsen show``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data import write_image
from .data.pairs import split_pair
from .metrics import PROTOCOLS, quantize_8bit, score_image
from .models import derain_image
from .models.utils import eval_mode, model_config_dict
from .persist import write_text_atomic

__all__ = [
    "INPUT_STAGE",
    "RESULTS_CSV",
    "SUMMARY_JSON",
    "EvalResult",
    "evaluate",
]

#: Stage label of the identity row (rainy input scored against the clean image).
INPUT_STAGE = "input"
#: File names inside a results folder.
RESULTS_CSV = "results.csv"
SUMMARY_JSON = "summary.json"


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4f}"


@dataclass
class EvalResult:
    """Scores of one evaluation.

    Attributes
    ----------
    names : list of str
        Image names, in dataset order.
    stages : list of str
        Stage labels in column order: ``'input'`` (rainy vs clean) then ``'1'`` ... ``'T'``
        (the estimate after that many stages; ``'T'`` alone with ``stages='last'``).
    protocols : tuple of str
        Metric protocols (``'rgb'``, ``'y'``).
    rows : list of dict
        One dict per (image, stage): ``image``, ``stage``, ``psnr_rgb``, ``ssim_rgb``,
        ``psnr_y``, ``ssim_y`` (for the protocols evaluated).
    model_config : dict or None
        The evaluated model's config.
    """

    names: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    protocols: tuple[str, ...] = PROTOCOLS
    rows: list[dict[str, Any]] = field(default_factory=list)
    model_config: dict[str, Any] | None = None

    @property
    def metric_keys(self) -> list[str]:
        """Column names of the scores, e.g. ``['psnr_rgb', 'ssim_rgb', 'psnr_y', 'ssim_y']``."""
        return [f"{m}_{p}" for p in self.protocols for m in ("psnr", "ssim")]

    def means(self) -> dict[str, dict[str, float]]:
        """Mean of every metric per stage: ``{stage: {metric: mean}}``.

        PSNR means are arithmetic means of per-image PSNR (as the published tables).
        """
        out: dict[str, dict[str, float]] = {}
        for stage in self.stages:
            rows = [r for r in self.rows if r["stage"] == stage]
            out[stage] = {k: sum(r[k] for r in rows) / len(rows) for k in self.metric_keys}
        return out

    def per_image(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Rows of one stage (default the last)."""
        stage = stage if stage is not None else self.stages[-1]
        return [r for r in self.rows if r["stage"] == stage]

    def table(self) -> str:
        """Plain-text table of the means per stage (one line per stage)."""
        keys = self.metric_keys
        head = ["stage", *keys]
        lines = [head]
        for stage, vals in self.means().items():
            lines.append([stage, *(_fmt(vals[k]) for k in keys)])
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        text = [
            "  ".join(
                str(c).rjust(w) if i else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(line, widths))
            )
            for line in lines
        ]
        text.insert(1, "  ".join("-" * w for w in widths))
        return f"{len(self.names)} images\n" + "\n".join(text)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write per-image rows then the means (``image = 'MEAN'``) as CSV (atomically replaced)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = ["image", "stage", *self.metric_keys]
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=cols)
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r[k] for k in cols})
        for stage, vals in self.means().items():
            w.writerow({"image": "MEAN", "stage": stage, **vals})
        write_text_atomic(path, text.getvalue())
        return path

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (means per stage, names, protocols, model config)."""
        return {
            "images": self.names,
            "stages": self.stages,
            "protocols": list(self.protocols),
            "means": self.means(),
            "model_config": self.model_config,
        }


def _names(dataset: Any, n: int) -> list[str]:
    names = getattr(dataset, "names", None)
    if isinstance(names, list | tuple) and len(names) == n:
        return [str(x) for x in names]
    return [f"{i:04d}" for i in range(n)]


def _pair(item: Any) -> tuple[torch.Tensor, torch.Tensor]:
    rainy, clean = split_pair(item)
    if rainy.dim() != 3:
        raise ValueError(f"evaluation pairs must be (3, H, W) images, got {tuple(rainy.shape)}")
    return rainy.float(), clean.float()


@torch.no_grad()
def _stage_outputs(
    model: nn.Module,
    rainy: torch.Tensor,
    tile: int | None,
    device: torch.device,
    overlap: int | None = None,
) -> list[torch.Tensor]:
    """Derained estimates ``O - R_t`` of every stage, each ``(3, H, W)`` on the CPU."""
    if tile:
        outs = derain_image(
            model, rainy, tile=tile, overlap=overlap, device=device, return_all=True
        )
        return [o.float().cpu() for o in outs]
    x = rainy.unsqueeze(0).to(device)
    return [(x - r.float())[0].cpu() for r in model(x)]


def evaluate(
    model: nn.Module,
    dataset: Any,
    protocols: tuple[str, ...] | list[str] = PROTOCOLS,
    stages: str = "all",
    tile: int | None = None,
    save_dir: str | os.PathLike | None = None,
    quantize: bool = True,
    device: str | torch.device | None = None,
    max_images: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    overlap: int | None = None,
) -> EvalResult:
    """Score a model on paired images, per image and per stage.

    Parameters
    ----------
    model : torch.nn.Module
        Network returning ``[R_1, ..., R_T]`` for ``(1, 3, H, W)``; run in eval mode.
    dataset : Dataset or sequence
        ``(rainy, clean)`` pairs of ``(3, H, W)`` tensors, e.g. a
        :class:`sdsen.data.PairedImageFolder` (its ``names`` label the rows).
    protocols : tuple of str
        Subset of ``('rgb', 'y')``.
    stages : {'all', 'last'}
        Score the estimate after every stage or only the final one.
    tile : int, optional
        Derain tile by tile (:func:`sdsen.models.derain_image`) with this tile size; None runs
        whole images.
    save_dir : str or os.PathLike, optional
        Write a results folder (see the module docstring): images per stage, ``results.csv``,
        ``summary.json``.
    quantize : bool
        Score 8-bit-truncated outputs (:func:`sdsen.metrics.quantize_8bit`), as published
        protocols do.
    device : str or torch.device, optional
        Default: the model's device.
    max_images : int, optional
        Evaluate only the first images.
    progress : bool
        Show a tqdm progress bar.
    overwrite : bool
        Allow replacing images in an existing ``save_dir``.
    overlap : int, optional
        Tile overlap with ``tile`` (default: the model's receptive-field radius).

    Returns
    -------
    EvalResult
        Includes the identity row (stage ``'input'``: rainy vs clean).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Zero(nn.Module):
    ...     def forward(self, x):
    ...         return [torch.zeros_like(x)]
    >>> clean = torch.rand(3, 16, 20)
    >>> res = evaluate(Zero(), [(clean, clean)], progress=False)
    >>> res.stages, round(res.means()["1"]["ssim_rgb"], 3)
    (['input', '1'], 1.0)
    """
    from tqdm.auto import tqdm

    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"unknown metric protocol {p!r}; expected a subset of {PROTOCOLS}")
    if stages not in ("all", "last"):
        raise ValueError(f"stages must be 'all' or 'last', got {stages!r}")
    n = len(dataset)
    if n == 0:
        raise ValueError("the evaluation dataset is empty (check the folder and its layout)")
    if max_images is not None:
        if max_images < 1:
            raise ValueError(
                f"max_images (--max-images) must be at least 1, got {max_images}; leave it unset "
                f"to score every image"
            )
        n = min(n, max_images)
    names = _names(dataset, len(dataset))[:n]
    params = list(model.parameters())
    dev = (
        torch.device(device)
        if device is not None
        else (params[0].device if params else torch.device("cpu"))
    )
    model.to(dev)
    result = EvalResult(
        names=names, protocols=tuple(protocols), model_config=model_config_dict(model)
    )
    save = Path(save_dir) if save_dir is not None else None
    bar = tqdm(range(n), desc="evaluate", disable=not progress, dynamic_ncols=True)
    try:
        with eval_mode(model):
            for i in bar:
                rainy, clean = _pair(dataset[i])
                outs = _stage_outputs(model, rainy, tile, dev, overlap)
                labels = [str(t + 1) for t in range(len(outs))]
                if stages == "last":
                    outs, labels = outs[-1:], labels[-1:]
                if not result.stages:
                    result.stages = [INPUT_STAGE, *labels]
                candidates = [rainy, *outs]
                for label, est in zip(result.stages, candidates):
                    row: dict[str, Any] = {"image": names[i], "stage": label}
                    row.update(score_image(est, clean, protocols, quantize))
                    result.rows.append(row)
                if save is not None:
                    ext = ".png"
                    write_image(save / "rainy" / f"{names[i]}{ext}", rainy, overwrite=overwrite)
                    write_image(save / "clean" / f"{names[i]}{ext}", clean, overwrite=overwrite)
                    for label, est in zip(result.stages[1:], outs):
                        img = quantize_8bit(est) if quantize else est.clamp(0, 1)
                        write_image(
                            save / f"stage_{label}" / f"{names[i]}{ext}", img, overwrite=overwrite
                        )
                last = result.rows[-1]
                bar.set_postfix(psnr=_fmt(last.get(f"psnr_{protocols[0]}", float("nan"))))
    finally:
        bar.close()
    if save is not None:
        result.to_csv(save / RESULTS_CSV)
        (save / SUMMARY_JSON).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
