"""Scores into numbers: per-stage means and gains, paired gaps, angle sweeps, markdown tables.

Scores come as :class:`sdsen.evaluate.EvalResult` objects or as their ``rows`` (one dict per
(image, stage) with ``image``, ``stage`` and ``psnr_rgb``, ``ssim_rgb``, ``psnr_y``, ``ssim_y``),
which is also the layout of the JSON files ``benchmarks/results.py evaluate`` writes. Plots of the
same numbers are in :mod:`sdsen.viz.results`.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "load_benchmark_results",
    "mean_sd",
    "model_table",
    "paired_gap",
    "refinement_table",
    "score_table",
    "stage_change",
    "stage_gains",
    "stage_means",
    "stage_order",
    "stage_values",
    "sweep_curve",
    "sweep_summary",
    "sweep_table",
]

Rows = Sequence[Mapping[str, Any]]


def _rows(result: Any) -> Rows:
    """The per-(image, stage) rows of an EvalResult, or the rows themselves."""
    return result.rows if hasattr(result, "rows") else result


def stage_order(rows: Rows) -> list[str]:
    """The stages of per-image ``rows`` (:meth:`sdsen.evaluate.EvalResult.rows`) in order.

    >>> stage_order([{"stage": "input"}, {"stage": "1"}, {"stage": "input"}])
    ['input', '1']
    """
    seen: list[str] = []
    for r in rows:
        if r["stage"] not in seen:
            seen.append(r["stage"])
    return seen


def stage_values(rows: Rows, stage: str, metric: str) -> list[float]:
    """``metric`` of every image at ``stage``, in row order."""
    return [float(r[metric]) for r in rows if r["stage"] == stage]


def mean_sd(vals: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none).

    >>> mean_sd([1.0, 3.0])
    (2.0, 1.4142135623730951)
    """
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def stage_change(
    rainy: torch.Tensor,
    clean: torch.Tensor,
    rains: Sequence[torch.Tensor],
    first: int = 1,
    last: int | None = None,
    tol: float = 1e-3,
) -> dict[str, Any]:
    """Where a later stage is better or worse than an earlier one, pixel by pixel.

    Parameters
    ----------
    rainy, clean
        ``O`` and ``B``, each ``(3, H, W)`` in ``[0, 1]``.
    rains
        Per-stage rain layers ``[R_1, ..., R_T]``, each ``(3, H, W)`` or ``(1, 3, H, W)``.
    first, last
        The stages compared, 1-based (``last`` defaults to ``T``).
    tol
        A pixel counts as worse (better) when its squared error, averaged over the colour
        channels, grows (shrinks) by more than ``tol``.

    Returns
    -------
    dict
        ``change``: ``(H, W)`` squared error of stage ``last`` minus that of stage ``first``
        (estimates clamped to ``[0, 1]``; positive: worse); ``excess``: ``(H, W)`` rain that
        stage ``last`` removes beyond the true rain, ``mean_c(R_last - (O - B))``;
        ``worse``, ``better``: shares of pixels; ``rain_where_worse``, ``true_where_worse``:
        mean of ``R_last`` and of ``O - B`` over the worse pixels (NaN if there are none).

    Examples
    --------
    >>> B = torch.full((3, 4, 4), 0.5); O = B + 0.1
    >>> R1, R2 = torch.full_like(O, 0.1), torch.full_like(O, 0.3)  # stage 2 removes too much
    >>> c = stage_change(O, B, [R1, R2])
    >>> c["worse"], round(c["rain_where_worse"], 2), round(c["true_where_worse"], 2)
    (1.0, 0.3, 0.1)
    """
    rains = [r[0] if r.dim() == 4 else r for r in rains]
    last = len(rains) if last is None else last
    o, b = rainy.detach().float().cpu(), clean.detach().float().cpu()
    r0, r1 = (rains[k - 1].detach().float().cpu() for k in (first, last))
    err0 = ((o - r0).clamp(0, 1) - b).pow(2).mean(0)
    err1 = ((o - r1).clamp(0, 1) - b).pow(2).mean(0)
    change = err1 - err0
    worse = change > tol

    def where(x: torch.Tensor) -> float:
        return float(x.mean(0)[worse].mean()) if worse.any() else float("nan")

    return {"change": change.numpy(), "excess": (r1 - (o - b)).mean(0).numpy(),
            "worse": float(worse.float().mean()), "better": float((change < -tol).float().mean()),
            "rain_where_worse": where(r1), "true_where_worse": where(o - b),
            "first": first, "last": last}


def stage_means(result: Any, metric: str = "psnr_y") -> tuple[list[str], list[float]]:
    """Mean of ``metric`` over images at each stage (``'input'`` first).

    Parameters
    ----------
    result
        An :class:`~sdsen.evaluate.EvalResult` or its rows.
    metric
        ``'psnr_rgb'``, ``'ssim_rgb'``, ``'psnr_y'`` or ``'ssim_y'``.

    Returns
    -------
    stages : list of str
        ``['input', '1', ..., 'T']``.
    means : list of float

    Examples
    --------
    >>> rows = [{"stage": "input", "psnr_y": 20.0}, {"stage": "1", "psnr_y": 25.0},
    ...         {"stage": "input", "psnr_y": 22.0}, {"stage": "1", "psnr_y": 27.0}]
    >>> stage_means(rows)
    (['input', '1'], [21.0, 26.0])
    """
    rows = _rows(result)
    stages = stage_order(rows)
    return stages, [statistics.fmean(stage_values(rows, s, metric)) for s in stages]


def stage_gains(result: Any, metric: str = "psnr_y") -> dict[str, Any]:
    """Where self-refinement stops helping: the gain of every stage and the best stage.

    Parameters
    ----------
    result
        An :class:`~sdsen.evaluate.EvalResult` (evaluated with ``stages='all'``) or its rows.
    metric
        Score to compare stages by.

    Returns
    -------
    dict
        ``stages`` (``['1', ..., 'T']``), ``means`` (mean score after each stage), ``gains``
        (``means[t] - means[t-1]``, the first against the rainy input), ``best`` (label of the
        stage with the highest mean), ``best_value``, ``last_value``, ``input_value`` and
        ``best_per_image`` (how many images peak at each stage: ``{stage: count}``).

    Examples
    --------
    >>> rows = [{"image": "a", "stage": s, "psnr_y": v}
    ...         for s, v in (("input", 20.0), ("1", 24.0), ("2", 25.0), ("3", 24.5))]
    >>> g = stage_gains(rows)
    >>> g["best"], g["gains"]
    ('2', [4.0, 1.0, -0.5])
    """
    rows = _rows(result)
    labels, means = stage_means(rows, metric)
    input_value = means[labels.index("input")] if "input" in labels else math.nan
    stages = [s for s in labels if s != "input"]
    vals = [m for s, m in zip(labels, means) if s != "input"]
    prev = [input_value, *vals[:-1]]
    gains = [v - p for v, p in zip(vals, prev)]
    best_i = int(np.argmax(vals))
    per_image: dict[str, int] = {s: 0 for s in stages}
    images: list[Any] = []
    for r in rows:
        if r.get("image") not in images:
            images.append(r.get("image"))
    for im in images:
        scores = {r["stage"]: float(r[metric]) for r in rows
                  if r.get("image") == im and r["stage"] != "input"}
        if scores:
            per_image[max(stages, key=lambda s: scores.get(s, -math.inf))] += 1
    return {"stages": stages, "means": vals, "gains": gains, "best": stages[best_i],
            "best_value": vals[best_i], "last_value": vals[-1], "input_value": input_value,
            "best_per_image": per_image}


def refinement_table(results: Mapping[str, Any], metric: str = "psnr_y") -> str:
    """Markdown table: mean score after every stage and its gain over the previous stage.

    Parameters
    ----------
    results
        ``{model name: EvalResult or rows}`` evaluated with ``stages='all'``.
    metric
        Metric key.

    Returns
    -------
    str
        One row per stage (``input`` first), one column per model: ``mean (gain)``; the best
        stage of each model in bold; a last row naming each model's best stage.

    Examples
    --------
    >>> rows = [{"image": "a", "stage": s, "psnr_y": v}
    ...         for s, v in (("input", 20.0), ("1", 24.0), ("2", 23.0))]
    >>> print(refinement_table({"m": rows}).splitlines()[-1])
    | best stage | 1 |
    """
    gains = {name: stage_gains(res, metric) for name, res in results.items()}
    t_max = max(len(g["stages"]) for g in gains.values())
    lines = ["| stage | " + " | ".join(f"`{n}`" for n in gains) + " |",
             "|---" * (len(gains) + 1) + "|",
             "| input | " + " | ".join(f"{g['input_value']:.3f}" if "ssim" in metric
                                       else f"{g['input_value']:.2f}" for g in gains.values())
             + " |"]
    fmt = "{:.3f}" if "ssim" in metric else "{:.2f}"
    for t in range(t_max):
        cells = []
        for g in gains.values():
            if t >= len(g["stages"]):
                cells.append("–")
                continue
            digits = 4 if "ssim" in metric else 2
            text = f"{fmt.format(g['means'][t])} ({g['gains'][t]:+.{digits}f})"
            cells.append(f"**{text}**" if g["stages"][t] == g["best"] else text)
        lines.append(f"| {t + 1} | " + " | ".join(cells) + " |")
    lines.append("| best stage | " + " | ".join(g["best"] for g in gains.values()) + " |")
    return "\n".join(lines)


def model_table(models: Mapping[str, torch.nn.Module]) -> str:
    """Markdown table of what each model is: architecture, group, stages, decoder, parameters.

    Parameters
    ----------
    models
        ``{name: network}`` with a ``config`` (:class:`sdsen.models.ModelConfig`).

    Returns
    -------
    str

    Examples
    --------
    >>> from sdsen.models import DSEN
    >>> print(model_table({"tiny": DSEN(channels=2, blocks=1)}).splitlines()[-1])
    | `tiny` | dsen | p4 | 2 | 1 | official | 972 |
    """
    lines = ["| model | arch | group | channels | stages | decoder | parameters |",
             "|---|---|---|---|---|---|---|"]
    for name, m in models.items():
        c = m.config
        n = sum(p.numel() for p in m.parameters())
        lines.append(f"| `{name}` | {c.arch} | {c.group} | {c.width} | {c.stages} | {c.decoder} | "
                     f"{n:,} |")
    return "\n".join(lines)


def _cell(rows: Rows, stage: str, protocol: str) -> str:
    m, sd = mean_sd(stage_values(rows, stage, f"psnr_{protocol}"))
    s = statistics.fmean(stage_values(rows, stage, f"ssim_{protocol}"))
    return f"{m:.2f} ± {sd:.2f} / {s:.3f}"


def score_table(results: Mapping[str, Any], protocols: Sequence[str] = ("rgb", "y"),
                *, identity: bool = True) -> str:
    """Markdown table of the final-stage scores of several models, in each protocol.

    Parameters
    ----------
    results
        ``{model name: EvalResult or rows}`` on the same images.
    protocols
        Columns, among ``'rgb'`` and ``'y'``.
    identity
        Add the rainy-input row (stage ``'input'`` of the first model).

    Returns
    -------
    str
        One row per model: stages, then ``PSNR mean ± sd over images / SSIM mean`` per protocol.

    Examples
    --------
    >>> rows = [{"image": "a", "stage": s, "psnr_rgb": p, "ssim_rgb": 0.5, "psnr_y": p + 1,
    ...          "ssim_y": 0.6} for s, p in (("input", 20.0), ("1", 25.0))]
    >>> print(score_table({"m": rows}).splitlines()[-1])
    | `m` | 1 | 25.00 ± 0.00 / 0.500 | 26.00 ± 0.00 / 0.600 |
    """
    head = "| model | stages | " + " | ".join(
        f"{p.upper() if p == 'rgb' else 'Y'} PSNR ± sd / SSIM" for p in protocols) + " |"
    lines = [head, "|---" * (len(protocols) + 2) + "|"]
    items = [(n, _rows(r)) for n, r in results.items()]
    if identity and items:
        first = items[0][1]
        lines.append("| rainy input (identity) | – | "
                     + " | ".join(_cell(first, "input", p) for p in protocols) + " |")
    for name, rows in items:
        stages = [s for s in stage_order(rows) if s != "input"]
        lines.append(f"| `{name}` | {len(stages)} | "
                     + " | ".join(_cell(rows, stages[-1], p) for p in protocols) + " |")
    return "\n".join(lines)


def paired_gap(a: Any, b: Any, metric: str = "psnr_y") -> dict[str, float]:
    """Per-image difference of two models' final-stage scores on the same images.

    Parameters
    ----------
    a, b
        EvalResults (or rows) of the two models, same images in the same order.
    metric
        Metric key.

    Returns
    -------
    dict
        ``mean`` and ``sd`` of ``a - b`` over images, ``ci95`` (half-width of the normal 95 %
        interval of the mean; ``nan`` for one image), ``wins`` (images where ``a`` is better)
        and ``n``.

    Examples
    --------
    >>> ra = [{"stage": "1", "psnr_y": v} for v in (25.0, 27.0)]
    >>> rb = [{"stage": "1", "psnr_y": v} for v in (24.0, 27.5)]
    >>> paired_gap(ra, rb)["wins"]
    1
    """
    ra, rb = _rows(a), _rows(b)
    va = stage_values(ra, stage_order(ra)[-1], metric)
    vb = stage_values(rb, stage_order(rb)[-1], metric)
    if len(va) != len(vb):
        raise ValueError(f"the two results cover different images ({len(va)} vs {len(vb)})")
    d = [x - y for x, y in zip(va, vb)]
    m, sd = mean_sd(d)
    ci = 1.96 * sd / math.sqrt(len(d)) if len(d) > 1 else math.nan
    return {"mean": m, "sd": sd, "ci95": ci, "wins": sum(x > 0 for x in d), "n": len(d)}


def sweep_curve(sweep: Mapping[Any, Any], metric: str = "psnr_y") -> dict[str, np.ndarray]:
    """PSNR (or another metric) against the test rain angle.

    Parameters
    ----------
    sweep
        ``{angle: EvalResult or rows}`` (angles as numbers or strings, as in the benchmark
        JSON), each scored on images rained at that angle.
    metric
        Metric key.

    Returns
    -------
    dict of numpy.ndarray
        ``angle (A,)`` sorted, ``mean (A,)`` and ``sd (A,)`` over images of the final stage,
        ``input (A,)``: the mean of the rainy input, ``gain (A,)`` and ``gain_sd (A,)``: the
        mean and sd over images of final stage minus input (NaN where the rows have no input
        stage).

    Examples
    --------
    >>> rows = lambda v: [{"stage": "input", "psnr_y": 20.0}, {"stage": "8", "psnr_y": v}]
    >>> sweep_curve({"90": rows(22.0), "-90": rows(24.0)})["mean"].tolist()
    [24.0, 22.0]
    """
    items = sorted(((float(a), _rows(r)) for a, r in sweep.items()), key=lambda x: x[0])
    angle, mean, sd, base, gain, gain_sd = [], [], [], [], [], []
    for a, rows in items:
        stages = stage_order(rows)
        last = stage_values(rows, stages[-1], metric)
        m, s = mean_sd(last)
        inp = stage_values(rows, "input", metric)
        angle.append(a)
        mean.append(m)
        sd.append(s)
        base.append(statistics.fmean(inp) if inp else math.nan)
        g, gs = mean_sd([x - y for x, y in zip(last, inp)]) if inp else (math.nan, math.nan)
        gain.append(g)
        gain_sd.append(gs)
    return {"angle": np.array(angle), "mean": np.array(mean), "sd": np.array(sd),
            "input": np.array(base), "gain": np.array(gain), "gain_sd": np.array(gain_sd)}


def sweep_table(sweeps: Mapping[str, Mapping[Any, Any]], metric: str = "psnr_y") -> str:
    """Markdown table of the sweep: one row per model (and the rainy input), one column per angle.

    Parameters
    ----------
    sweeps
        ``{model name: {angle: EvalResult or rows}}``.
    metric
        Metric key.

    Returns
    -------
    str
        Mean final-stage score per angle.

    Examples
    --------
    >>> rows = lambda v: [{"stage": "input", "psnr_y": 20.0}, {"stage": "8", "psnr_y": v}]
    >>> print(sweep_table({"m": {0: rows(25.0), 90: rows(22.0)}}).splitlines()[-1])
    | `m` | 25.00 | 22.00 |
    """
    curves = {name: sweep_curve(s, metric) for name, s in sweeps.items()}
    first = next(iter(curves.values()))
    lines = ["| model | " + " | ".join(f"{a:g}°" for a in first["angle"]) + " |",
             "|---" * (len(first["angle"]) + 1) + "|"]
    if np.isfinite(first["input"]).any():
        lines.append("| rainy input | " + " | ".join(f"{v:.2f}" for v in first["input"]) + " |")
    for name, c in curves.items():
        lines.append(f"| `{name}` | " + " | ".join(f"{v:.2f}" for v in c["mean"]) + " |")
    return "\n".join(lines)


def sweep_summary(
    sweeps: Mapping[str, Mapping[Any, Any]], baseline: str, metric: str = "psnr_y"
) -> str:
    """Markdown table reading a sweep at the seen angle (0°) and the farthest ones (±90°).

    Parameters
    ----------
    sweeps
        ``{model name: {angle: EvalResult or rows}}``, every model swept over the same angles,
        which include 0, -90 and 90.
    baseline
        Name in ``sweeps`` of the model the others are compared with (the plain CNN).
    metric
        Metric key.

    Returns
    -------
    str
        One row per model: the mean final-stage score at 0°, the mean of the -90° and 90° means,
        the drop between the two, and the differences to ``baseline`` at 0° and at ±90°.

    Examples
    --------
    >>> rows = lambda v: [{"stage": "input", "psnr_y": 20.0}, {"stage": "8", "psnr_y": v}]
    >>> sweeps = {"plain": {0: rows(26.0), 90: rows(22.0), -90: rows(22.0)},
    ...           "p4": {0: rows(25.0), 90: rows(24.0), -90: rows(23.0)}}
    >>> print(sweep_summary(sweeps, "plain").splitlines()[-1])
    | `p4` | 25.00 | 23.50 | -1.50 | -1.00 | +1.50 |
    """
    if baseline not in sweeps:
        raise ValueError(f"baseline {baseline!r} is not among the swept models {list(sweeps)}")

    def at(curve: dict[str, np.ndarray], angles: Sequence[float]) -> float:
        idx = [int(np.flatnonzero(curve["angle"] == a)[0]) for a in angles]
        return float(np.mean(curve["mean"][idx]))

    curves = {name: sweep_curve(s, metric) for name, s in sweeps.items()}
    missing = [n for n, c in curves.items() if not {0.0, 90.0, -90.0} <= set(c["angle"].tolist())]
    if missing:
        raise ValueError(f"the sweeps of {missing} lack one of the angles 0, -90, 90")
    base0, base90 = at(curves[baseline], [0.0]), at(curves[baseline], [-90.0, 90.0])
    lines = [f"| model | 0° | ±90° | drop | − `{baseline}` at 0° | − `{baseline}` at ±90° |",
             "|---|---|---|---|---|---|"]
    for name, c in curves.items():
        v0, v90 = at(c, [0.0]), at(c, [-90.0, 90.0])
        lines.append(f"| `{name}` | {v0:.2f} | {v90:.2f} | {v90 - v0:+.2f} | "
                     f"{v0 - base0:+.2f} | {v90 - base90:+.2f} |")
    return "\n".join(lines)


def load_benchmark_results(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The per-model JSON files of ``benchmarks/results.py evaluate`` (empty if none).

    Parameters
    ----------
    folder
        ``benchmarks/results`` (``zoo.json`` and non-model files are skipped).

    Returns
    -------
    dict
        ``{model name: {"synthetic": rows, "sweep": {angle: rows}, "real": rows or None, ...}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    path = Path(folder)
    if not path.is_dir():
        return out
    for p in sorted(path.glob("*.json")):
        if p.stem == "zoo":
            continue
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and ("synthetic" in data or "sweep" in data):
            out[p.stem] = data
    return out

