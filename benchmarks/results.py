"""The study tables and figures, regenerated from the study models' scores.

Two steps, so that the expensive one can run where a GPU is::

    python benchmarks/results.py evaluate [--device cuda] [--real-root DIR] [--quick]
    python benchmarks/results.py report
    python benchmarks/results.py curve --run runs/zoo/runs/sdsen --name sdsen --init-steps 600

``evaluate`` scores every model in ``sdsen/weights/`` (or ``--weights-dir``) with
:func:`sdsen.evaluate.evaluate` (8-bit outputs, RGB and Y protocols, every stage) on

- ``synthetic``: the built-in *test* photo (never seen in training) under 12 draws of the
  ``v1-mixed`` rain preset, whole image;
- ``sweep``: the same photo under single-layer rain at angles -90..90 in 15 degree steps, 4 draws
  each (the tilted-rain generalization study);
- ``real``: the real-background validation folder (``../shared/data/raincityscapes_test100``
  when present, or ``--real-root``), 100 pairs, never used for training;

and writes one JSON per model to ``benchmarks/results/``. ``report`` turns those into the tables
of ``benchmarks/results/RESULTS.md``, the figures ``figures/results_*.png`` and the model cards
of the study models in ``sdsen/weights/`` (with ``zoo.json`` from ``scripts/train_pretrained.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rain_split import colour_text as _rgb  # benchmarks/rain_split.py (run from benchmarks/)

from sdsen.analysis import mean_sd, paired_gap, stage_order, stage_values
from sdsen.analysis import sweep_curve as angle_curve
from sdsen.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ANGLES = list(range(-90, 91, 15))
# single-layer rain in the middle of the "v1-heavy" preset's ranges, haze-free: only the
# angle differs from the training distribution
SWEEP_PARAMS = {"length": 17.0, "width": 3.5, "density": 0.002, "intensity": 0.4, "layers": 1,
                "atmosphere": 0.1, "atmosphere_relative": True, "seed": 0}
SYNTH_SEED, SWEEP_SEED = 2024, 4048
# the models of each comparison
PARTS = ("synthetic", "sweep", "real")
# trained on near-vertical rain, swept over angles: one DSEN-scale study (CPU) and one at full
# scale (8 stages, GPU); the plain CNN first in each
STUDY = ["plain-vertical", "dsen-vertical", "dsen-p4m-vertical", "dsen-equivariant-vertical"]
STUDY8 = ["sdsen-plain-vertical", "sdsen-vertical", "sdsen-p4m-vertical"]
STUDIES = {"DSEN scale (1 stage), CPU recipe": STUDY, "full scale (8 stages), GPU recipe": STUDY8}
MAIN = ["sdsen", "dsen", "plain", "sdsen-p4m", "sdsen-gpu", "plain-gpu", "sdsen-p4m-gpu",
        "sdsen-official"]
# line style of a recipe in the per-stage figure, by name suffix (one colour per architecture)
RECIPE_STYLE = {"-gpu": "--", "-official": "-."}
# the 8-stage models of one recipe: the plain CNN first, then the group models
EQUAL_BUDGET = [("plain", "sdsen-p4m"), ("plain-gpu", "sdsen-gpu", "sdsen-p4m-gpu")]
# (a, b): per-image Y PSNR gaps a - b reported in RESULTS.md
PAIRS = [("sdsen", "dsen"), ("sdsen-p4m", "plain"),
         ("sdsen-gpu", "plain-gpu"), ("sdsen-p4m-gpu", "plain-gpu"),
         ("sdsen-p4m-gpu", "sdsen-gpu"), ("sdsen-official", "sdsen-gpu"),
         ("sdsen-vertical", "sdsen-plain-vertical"),
         ("sdsen-p4m-vertical", "sdsen-plain-vertical"),
         ("dsen-vertical", "plain-vertical"), ("dsen-p4m-vertical", "plain-vertical"),
         ("dsen-p4m-vertical", "dsen-vertical"), ("dsen-equivariant-vertical", "dsen-vertical"),
         ("dsen-vertical", "dsen-uncalibrated")]
ABLATION = ["dsen-uncalibrated", "dsen-vertical"]


def default_real_root() -> Path:
    return ROOT.parent / "shared" / "data" / "raincityscapes_test100"


# ------------------------------------------------------------------------------- evaluate
def evaluate_all(args: argparse.Namespace) -> None:
    import torch

    from sdsen.data import PairedImageFolder, SyntheticRainDataset
    from sdsen.evaluate import evaluate
    from sdsen.pretrained import load_weights
    from sdsen.rain import RainParams

    weights = sorted(Path(args.weights_dir).glob("*.pt"))
    if not weights:
        sys.exit(f"no weights (*.pt) in {args.weights_dir}")
    real_root = Path(args.real_root) if args.real_root else default_real_root()
    real = PairedImageFolder(real_root) if real_root.is_dir() else None
    if real is None:
        print(f"real validation folder {real_root} not found: skipping the 'real' scores "
              "(pass --real-root DIR)", flush=True)
    n_syn, n_sweep = (2, 1) if args.quick else (12, 4)
    synthetic = SyntheticRainDataset("test", patch_size=None, crops="full", length=n_syn,
                                     preset="v1-mixed", seed=SYNTH_SEED)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in weights:
        name = path.stem
        if args.only and name not in args.only:
            continue
        t0 = time.time()
        model = load_weights(path, args.device)
        kw = {"device": args.device, "progress": False}
        res: dict = {"name": name, "model_config": None, "synthetic": None, "real": None,
                     "sweep": {}}
        if (out / f"{name}.json").exists() and set(args.parts) != set(PARTS):
            res.update(json.loads((out / f"{name}.json").read_text()))  # keep the other parts
        multistage = model.config.stages > 1
        max_real = args.max_real_multistage if multistage else args.max_real
        res["model_config"] = asdict(model.config)
        with torch.inference_mode():
            if "synthetic" in args.parts:
                res["synthetic"] = evaluate(model, synthetic, **kw).rows
            sweep = "sweep" in args.parts and (not multistage or args.sweep_all)
            for i, angle in enumerate(ANGLES if sweep else []):
                ds = SyntheticRainDataset(
                    "test", patch_size=None, crops="full", length=n_sweep,
                    fixed_params=RainParams(angle=float(angle), **SWEEP_PARAMS),
                    seed=SWEEP_SEED + i)
                res["sweep"][str(angle)] = evaluate(model, ds, stages="last", **kw).rows
            if real is not None and "real" in args.parts:
                res["real"] = evaluate(model, real, max_images=max_real, **kw).rows
        res["seconds"] = time.time() - t0
        res["device"] = str(args.device)
        (out / f"{name}.json").write_text(json.dumps(res))
        print(f"{name:28s} evaluated in {res['seconds']:.1f} s", flush=True)


# ---------------------------------------------------------------------------------- curve
def record_curve(args: argparse.Namespace) -> None:
    """The validation curve of a training run scored on real pairs, as a small JSON.

    The run must have validated on the first N pairs of a paired folder
    (``scripts/train_pretrained.py --val-folder``). Added here, with the same
    :func:`sdsen.train.validate` on the same N pairs, the weights a fine-tuning run started
    from (plotted at ``--init-steps``); and the rainy input (identity) scored like every row of
    :func:`sdsen.evaluate.evaluate`.
    """
    import statistics

    import torch

    from sdsen.data import PairedImageFolder
    from sdsen.metrics import score_image
    from sdsen.models import ModelConfig, build_model
    from sdsen.pretrained import initial_weights
    from sdsen.train import read_metrics, validate

    run = Path(args.run)
    config = json.loads((run / "config.json").read_text())
    vals = read_metrics(run, "val")
    if not vals:
        sys.exit(f"{run} has no validation records")
    n = vals[0]["images"]
    root = Path(args.real_root) if args.real_root else default_real_root()
    folder = PairedImageFolder(root)
    keys = ("psnr", "ssim", "psnr_y", "ssim_y")
    points = [{"step": args.init_steps + v["step"], **{k: v[k] for k in keys}} for v in vals]
    scores = [score_image(*folder[i]) for i in range(n)]  # validate's keys -> evaluate's
    as_validate = {"psnr": "psnr_rgb", "ssim": "ssim_rgb", "psnr_y": "psnr_y", "ssim_y": "ssim_y"}
    identity = {k: statistics.fmean(row[v] for row in scores) for k, v in as_validate.items()}
    with torch.inference_mode():
        init = config["train"].get("init_weights")
        if init:
            cfg, state, _ = initial_weights(init)
            model = build_model(ModelConfig(**cfg))
            model.load_state_dict(state)
            start = validate(model, folder, "cpu", max_images=n)
            points.insert(0, {"step": args.init_steps, **{k: start[k] for k in keys}})
    train = read_metrics(run, "train")
    every = max(1, len(train) // 100)
    curve = {
        "run": str(run), "folder": root.name, "images": n, "init_weights": init,
        "init_steps": args.init_steps, "train_config": config["train"],
        "model_config": config["model"],
        "identity": identity, "points": points,
        "train_loss": [[args.init_steps + r["step"], r["loss"]] for r in train[::every]],
    }
    out = Path(args.out) / "curves"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(curve, indent=1) + "\n")
    print(f"wrote {out / (args.name + '.json')}: {len(points)} points on {n} pairs")


def _load_curves(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((folder / "curves").glob("*.json"))}


def curve_table(curves: dict[str, dict]) -> str:
    """Markdown: each recorded validation curve's first, last and best point (last stage), its
    slope over the second half of the run, and how many times its patch pixels the official
    preset trains on."""
    if not curves:
        return ""
    off = TrainConfig.preset("official")
    lines = [("| run | pairs | steps | Y PSNR first → last (best) | rainy input | "
             "Y SSIM first → last (input) | dB per 1,000 steps, 2nd half | official ÷ this "
             "run, patch pixels |"), "|---" * 8 + "|"]
    for name, c in curves.items():
        pts = c["points"]
        steps = [p["step"] for p in pts]
        y, ss = [p["psnr_y"][-1] for p in pts], [p["ssim_y"][-1] for p in pts]
        half = [i for i, s in enumerate(steps) if s >= steps[0] + (steps[-1] - steps[0]) / 2]
        i0 = half[0] if len(half) > 1 else 0
        slope = (y[-1] - y[i0]) / (steps[-1] - steps[i0]) * 1000
        tc = c["train_config"]
        ratio = off.steps * off.batch_size * off.patch_size**2 / (
            steps[-1] * tc["batch_size"] * tc["patch_size"] ** 2)
        lines.append(f"| `{name}` | {c['images']} | {steps[0]:,} → {steps[-1]:,} | "
                     f"{y[0]:.2f} → {y[-1]:.2f} ({max(y):.2f}) | {c['identity']['psnr_y']:.2f} | "
                     f"{ss[0]:.3f} → {ss[-1]:.3f} ({c['identity']['ssim_y']:.3f}) | "
                     f"{slope:+.2f} | {ratio:,.0f} |")
    return "\n".join(lines) + "\n"


def curve_figure(curves: dict[str, dict], target: float = 24.0, target_ssim: float = 0.88) -> list[str]:
    """``figures/results_training_curve.png``: Y PSNR and SSIM on real pairs vs training step."""
    if not curves:
        return []
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from sdsen.viz import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, c in curves.items():
        steps = [p["step"] for p in c["points"]]
        for ax, key in zip(axes, ("psnr_y", "ssim_y")):
            ax.plot(steps, [p[key][-1] for p in c["points"]], marker="o", label=f"{name}, last stage")
            if len(c["points"][0][key]) > 1:
                ax.plot(steps, [p[key][0] for p in c["points"]], marker=".", ls="--",
                        alpha=0.7, label=f"{name}, stage 1")
            ax.axhline(c["identity"][key], color="k", ls=":", label="rainy input")
            if c.get("init_weights"):
                ax.axvline(steps[0], color="0.6", lw=0.8, label="fine-tuning starts")
    axes[0].axhline(target, color="tab:red", ls="-.", label=f"target {target:.1f} dB")
    axes[1].axhline(target_ssim, color="tab:red", ls="-.", label=f"target {target_ssim:.2f}")
    n = next(iter(curves.values()))["images"]
    axes[0].set(xlabel="training step", ylabel="Y PSNR (dB)",
                title=f"Validation on the first {n} real pairs")
    axes[1].set(xlabel="training step", ylabel="Y SSIM", title="(same images)")
    axes[0].legend(fontsize=7)
    save_figure(fig, "results_training_curve")
    plt.close(fig)
    return ["results_training_curve.png"]


# --------------------------------------------------------------------------------- report
def _load(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if p.stem != "zoo"}


def _last(rows: list[dict]) -> str:
    return stage_order(rows)[-1]


def _cell(rows: list[dict], stage: str, proto: str) -> str:
    p = mean_sd(stage_values(rows, stage, f"psnr_{proto}"))
    s = statistics.fmean(stage_values(rows, stage, f"ssim_{proto}"))
    return f"{p[0]:.2f} ± {p[1]:.2f} / {s:.3f}"


def table_scores(res: dict[str, dict], key: str, names: list[str]) -> str:
    """Markdown table: identity row, then each model's final stage, both protocols."""
    names = [n for n in names if n in res and res[n].get(key)]
    if not names:
        return "_not evaluated_\n"
    lines = [("| model | images | stages | RGB PSNR ± sd / SSIM | Y PSNR ± sd / SSIM | "
             "best stage (Y PSNR) |"), "|---|---|---|---|---|---|"]
    identities: set[int] = set()
    for n in names:
        rows = res[n][key]
        n_img = len(stage_values(rows, "input", "psnr_y"))
        if n_img not in identities:  # the rainy input scored on the same images
            identities.add(n_img)
            lines.append(f"| rainy input (identity) | {n_img} | – | {_cell(rows, 'input', 'rgb')}"
                         f" | {_cell(rows, 'input', 'y')} | – |")
        stages = [s for s in stage_order(rows) if s != "input"]
        best = max(stages, key=lambda s: statistics.fmean(stage_values(rows, s, "psnr_y")))
        best_v = statistics.fmean(stage_values(rows, best, "psnr_y"))
        lines.append(f"| `{n}` | {n_img} | {len(stages)} | {_cell(rows, stages[-1], 'rgb')} | "
                     f"{_cell(rows, stages[-1], 'y')} | {best} ({best_v:.2f}) |")
    return "\n".join(lines) + "\n\n± is the standard deviation over images; a model scored " \
                              "on fewer images is next to the identity row of those images.\n"


def table_paired(res: dict[str, dict], key: str, a: str, b: str,
                 zoo: dict | None = None) -> str:
    """Per-image gap of model ``a`` over model ``b`` (final stages) on part ``key``: Y PSNR
    mean, sd, 95 % CI and wins; Y SSIM mean and wins; the recipe settings where they differ."""
    if a not in res or b not in res or not res[a].get(key) or not res[b].get(key):
        return ""
    g = paired_gap(res[a][key], res[b][key], "psnr_y")
    s = paired_gap(res[a][key], res[b][key], "ssim_y")
    return (f"| {key}: `{a}` − `{b}` | {g['mean']:+.2f} dB | {g['sd']:.2f} | ±{g['ci95']:.2f} | "
            f"{g['wins']}/{g['n']} | {s['mean']:+.3f} | {s['wins']}/{s['n']} | "
            f"{recipe_difference(zoo, a, b) or '–'} |")


def table_stages(res: dict[str, dict], key: str, names: list[str], proto: str = "y") -> str:
    names = [n for n in names if n in res and res[n].get(key)]
    if not names:
        return ""
    width = max(len([s for s in stage_order(res[n][key]) if s != "input"]) for n in names)
    head = "| model | input | " + " | ".join(str(i) for i in range(1, width + 1)) + " |"
    lines = [head, "|---" * (width + 2) + "|"]
    for n in names:
        rows = res[n][key]
        vals = [f"{statistics.fmean(stage_values(rows, s, f'psnr_{proto}')):.2f}"
                for s in stage_order(rows)]
        vals += [""] * (width + 1 - len(vals))
        lines.append(f"| `{n}` | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def sweep_curve(res: dict, name: str, proto: str = "y") -> tuple[list[int], list[float],
                                                                   list[float]]:
    """Angles, mean and sd over images of ``name``'s last-stage PSNR on the angle sweep."""
    c = angle_curve(res[name]["sweep"], f"psnr_{proto}")
    return [int(a) for a in c["angle"]], c["mean"].tolist(), c["sd"].tolist()


def sweep_table(res: dict[str, dict], names: list[str]) -> str:
    """Markdown: mean Y PSNR of each model's last stage at every test angle, and the change
    from 0° to the worse of ±90° (the rainy input first)."""
    lines = ["| model | " + " | ".join(f"{a}°" for a in ANGLES) + " | worse of ±90° − 0° |",
             "|---" * (len(ANGLES) + 2) + "|"]
    base = [statistics.fmean(stage_values(res[names[0]]["sweep"][str(a)], "input", "psnr_y"))
            for a in ANGLES]
    lines.append("| rainy input | " + " | ".join(f"{v:.2f}" for v in base) + " | – |")
    for n in names:
        _, m, _ = sweep_curve(res, n)
        drop = min(m[0], m[-1]) - m[ANGLES.index(0)]
        lines.append(f"| `{n}` | " + " | ".join(f"{v:.2f}" for v in m) + f" | {drop:+.2f} |")
    return "\n".join(lines) + "\n"


def figures(res: dict[str, dict]) -> list[str]:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from sdsen.viz import save_figure

    made = []
    studies = {t: [n for n in names if res.get(n, {}).get("sweep")]
               for t, names in STUDIES.items()}
    studies = {t: names for t, names in studies.items() if names}
    if studies:
        fig, axes = plt.subplots(1, len(studies), figsize=(7 * len(studies), 4), squeeze=False,
                                 sharey=True)
        for ax, (title, names) in zip(axes[0], studies.items()):
            for n in names:
                x, m, s = sweep_curve(res, n)
                ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label=n)
            rows = res[names[0]]["sweep"]
            base = [statistics.fmean(stage_values(rows[str(a)], "input", "psnr_y")) for a in ANGLES]
            ax.plot(ANGLES, base, "k:", label="rainy input")
            ax.axvspan(-10, 10, color="0.9", label="training angles (±10°)")
            ax.set(xlabel="test rain angle (degrees, 0 = vertical)", title=title,
                   xticks=ANGLES[::2])
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel("Y PSNR (dB)")
        fig.suptitle("Tilted-rain generalization (trained on near-vertical rain)")
        save_figure(fig, "results_angle_sweep")
        plt.close(fig)
        made.append("results_angle_sweep.png")
    panels = [(k, t) for k, t in (("synthetic", "synthetic test photo"),
                                  ("real", "real-background validation")) if
              any(res.get(n, {}).get(k) for n in MAIN)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            colours = {}  # one colour per architecture, one line style per recipe
            for n in MAIN:
                if n not in res or not res[n].get(key):
                    continue
                rows = res[n][key]
                stages = stage_order(rows)
                ys = [statistics.fmean(stage_values(rows, s, "psnr_y")) for s in stages]
                suffix = next((k for k in RECIPE_STYLE if n.endswith(k)), "")
                arch = n.removesuffix(suffix) if suffix else n
                line, = ax.plot(range(len(stages)), ys, marker="o", label=n,
                                color=colours.get(arch), ls=RECIPE_STYLE.get(suffix, "-"))
                colours.setdefault(arch, line.get_color())
            ax.set(xlabel="stage (0 = rainy input)", ylabel="Y PSNR (dB)", title=title)
            ax.legend(fontsize=8)
        save_figure(fig, "results_stages")
        plt.close(fig)
        made.append("results_stages.png")
    return made


def _recipe(entry: dict) -> dict:
    """The settings of a zoo.json entry that recipe_difference compares."""
    tc = entry.get("train_config")
    if not tc:
        return {}
    angles = entry.get("angle_range")
    return {"steps": entry.get("steps", tc.get("steps")),  # trained, not planned, if stopped
            **{k: tc.get(k) for k in ("batch_size", "patch_size", "lr", "milestones", "grad_clip")},
            "rain angles": f"±{angles[1]:g}°" if angles else "of the preset",
            "rot90/mirror": "yes" if entry.get("augment", True) else "no"}


def recipe_difference(zoo: dict | None, a: str, b: str) -> str:
    """``"lr 0.0005 vs 0.001"``: the training settings where ``a`` and ``b`` differ, or ``""``.

    Read from their ``zoo.json`` entries (nothing without them): steps trained, batch, patch,
    learning rate and its milestones, clipping, rain angles and the rot90/mirror augmentation.
    """
    models = (zoo or {}).get("models", {})
    ta, tb = (_recipe(models.get(n, {})) for n in (a, b))
    if not ta or not tb:
        return ""
    return ", ".join(f"{k.replace('_', ' ')} {ta[k]} vs {tb[k]}" for k in ta if ta[k] != tb[k])


def rain_split_means(folder: Path) -> tuple[dict, dict[str, dict[str, float]]] | None:
    """``analyses/rain_split.json`` (``benchmarks/rain_split.py --json``) and, per model, the
    mean over its images of every recorded value; ``None`` when nothing is recorded."""
    path = folder / "analyses" / "rain_split.json"
    if not path.exists():
        return None
    split = json.loads(path.read_text())
    return split, {name: {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
                   for name, rows in split["per_image"].items()}


def rain_split_table(folder: Path) -> str:
    """Markdown from ``analyses/rain_split.json`` (``benchmarks/rain_split.py --json``): per
    model, Y PSNR of its output, of removing only its smooth part, and of its streak-scale part
    on top of the true smooth part; the mean removed layer per channel and blue minus red."""
    recorded = rain_split_means(folder)
    if recorded is None:
        return ""
    split, means = recorded
    ref = next(iter(means.values()))
    colour = "mean R B" in ref  # recorded since the colour columns were added to rain_split.py

    def rgb(m: dict[str, float], which: str) -> str:
        if not colour:
            return "– | –"
        return f"{_rgb(m, which)} | {255 * (m[f'mean {which} B'] - m[f'mean {which} R']):+.1f}"

    lines = [(f"`{split['command']}`: {len(split['indices'])} pairs, smooth part = "
             f"{split['kernel']}² mean.\n"),
             ("| layer removed | Y PSNR (dB) | its smooth part only | true smooth + its streak "
             "part | mean per channel R, G, B (levels) | blue − red |"), "|---" * 6 + "|",
             f"| none (rainy input) | {ref['input']:.2f} | – | – | – | – |",
             f"| the true rain | – | {ref['true smooth']:.2f} | – | {rgb(ref, 'R')} |"]
    lines += [f"| `{n}` | {m['model']:.2f} | {m['smooth only']:.2f} | "
              f"{m['true smooth + model detail']:.2f} | {rgb(m, 'R̂')} |" for n, m in means.items()]
    return "\n".join(lines) + "\n"


def report(args: argparse.Namespace) -> None:
    res = _load(Path(args.results))
    if not res:
        sys.exit(f"no results in {args.results}: run `python benchmarks/results.py evaluate`")
    curves = _load_curves(Path(args.results))
    made = figures(res) + curve_figure(curves)
    everything = [n for n in MAIN + STUDY + STUDY8 + ABLATION[:1] if n in res]
    zoo = json.loads(Path(args.zoo).read_text()) if args.zoo else None
    parts = ["## Synthetic test photo (v1-mixed rain presets at ±30°, 12 draws)\n",
             table_scores(res, "synthetic", everything),
             "\n## Real-background validation (raincityscapes_test100, 100 pairs)\n",
             table_scores(res, "real", everything),
             "\n## Paired comparisons (final stages, per image)\n",
             "| comparison | Y PSNR gap | sd | 95% CI | wins | Y SSIM gap | wins | recipes differ in |",
             "|---|---|---|---|---|---|---|---|"]
    parts += [row for key in ("synthetic", "real") for a, b in PAIRS
              if (row := table_paired(res, key, a, b, zoo))]
    parts += ["\n## Self-refinement: Y PSNR after each stage\n",
              "Synthetic test photo:\n", table_stages(res, "synthetic", everything),
              "\nReal-background validation:\n", table_stages(res, "real", everything)]
    if curves:
        parts += ["\n## Validation curves recorded during training (last stage)\n",
                  curve_table(curves)]
    split = rain_split_table(Path(args.results))
    if split:
        parts += ["\n## Rain split of the real folder: smooth (haze) and streak-scale parts\n",
                  split]
    study = [n for n in STUDY + STUDY8 if n in res and res[n].get("sweep")]
    if study:
        parts += ["\n## Tilted rain: Y PSNR by test angle (models trained on ±10°)\n",
                  sweep_table(res, study)]
    body = "\n".join(parts) + "\n"
    devices = sorted({r.get("device", "?") for r in res.values()})
    header = ("# Results of the shipped weights\n\nGenerated by `python benchmarks/results.py "
              f"report` from the scores that `python benchmarks/results.py evaluate` wrote "
              f"(device: {', '.join(devices)}). Outputs clamped to [0, 1] and truncated to 8 "
              "bits; RGB and MATLAB-Y protocols of `sdsen.metrics`. Tables only: what they "
              "mean is discussed in `docs/RESULTS.md`; recipes are in the model cards.\n\n")
    figs = "".join(f"![{f}](../../figures/{f})\n" for f in made)
    (Path(args.results) / "RESULTS.md").write_text(header + body + "\n" + figs)
    print(header + body)
    if zoo:
        write_cards(res, zoo)


def _clip_text(grad_clip: float | None) -> str:
    """How a model card states ``TrainConfig.grad_clip``."""
    return f"gradient norm clipped to {grad_clip}" if grad_clip else "no gradient clipping"


#: The ``TrainConfig`` fields that make a recipe (the rest are logging and checkpoint plumbing).
RECIPE_FIELDS = ("batch_size", "patch_size", "steps", "lr", "milestones", "gamma",
                 "weight_decay", "grad_clip")


def _start_config(entry: dict) -> dict | None:
    """The train config a zoo entry's run started with: its last config with every setting
    changed on a resume (``config_changes``, ``[[step, {field: [old, new]}], ...]``) set back
    to its first value."""
    tc = entry.get("train_config")
    if not tc:
        return tc
    start = dict(tc)
    for _, changed in reversed(entry.get("config_changes") or []):
        start |= {k: old for k, (old, _) in changed.items()}
    return start


def preset_text(train_config: dict | None) -> str | None:
    """Which ``sdsen train`` preset a model's training started from, and what its recipe changed.

    ``train_config`` is the ``TrainConfig.to_dict()`` of the run (its ``name`` is the preset it
    started from); ``None`` when the card has no config or names no known preset.

    >>> preset_text({"name": "cpu", "batch_size": 4, "patch_size": 40, "steps": 600, "lr": 1e-3,
    ...              "milestones": [450, 525], "gamma": 0.1, "weight_decay": 0.0,
    ...              "grad_clip": 1.0})
    'the `cpu` preset with steps 1000 -> 600, milestones [750, 875] -> [450, 525]'
    """
    from sdsen.train.config import PRESETS

    name = (train_config or {}).get("name")
    if name not in PRESETS:
        return None
    base = TrainConfig.preset(name).to_dict()
    changed = [f"{k} {base[k]} -> {train_config[k]}" for k in RECIPE_FIELDS
               if k in train_config and train_config[k] != base[k]]
    return f"the `{name}` preset" + (f" with {', '.join(changed)}" if changed else ", unchanged")


def _init_chain(init: dict | None) -> list[dict]:
    """The trainings a fine-tuned model went through before its last one, oldest first."""
    chain = []
    while init:
        tc = init.get("train_config") or {}
        chain.insert(0, {"steps": init.get("steps"), "train_seconds": init.get("train_seconds"),
                         "batch_size": tc.get("batch_size"), "patch_size": tc.get("patch_size"),
                         "lr": tc.get("lr"), "milestones": tc.get("milestones"),
                         "grad_clip": tc.get("grad_clip"),
                         "rain_preset": init.get("preset"), "angle_range": init.get("angle_range"),
                         "command": init.get("command")})
        init = init.get("init")
    return chain


#: Training photos of the models of scripts/train_pretrained.py (an entry's "photos" overrides).
ZOO_PHOTOS = ("built-in train split (sdsen.data.builtin_clean_images('train')), random square "
              "crops of the recipe's patch size, each turned by a random rot90/mirror before the "
              "rain is added")


def write_cards(res: dict[str, dict], zoo: dict, weights_dir: Path | None = None) -> None:
    """Model cards of the zoo's models in ``cards.json`` (the other cards are kept, e.g. those
    of ``scripts/ship_run.py``), and their rendering ``README.md`` in ``sdsen/weights/``."""
    from sdsen.pretrained import WEIGHTS_DIR, cards_markdown

    weights_dir = weights_dir or WEIGHTS_DIR
    path = weights_dir / "cards.json"
    cards = json.loads(path.read_text()) if path.exists() else {}
    for name, entry in zoo["models"].items():
        if not (weights_dir / f"{name}.pt").exists():
            continue
        card = {
            "role": entry["role"],
            "study": bool(entry.get("study", False)),
            "model_config": entry["model_config"],
            "training_data": {
                "photos": entry.get("photos", ZOO_PHOTOS),
                "rain_preset": entry["preset"], "angle_range": entry["angle_range"]},
            "train_config": entry.get("train_config"),
            "training_preset": preset_text(_start_config(entry)),
            "steps": entry.get("steps"),
            "steps_planned": entry.get("steps_planned", entry.get("steps")),
            "stopped_early": bool(entry.get("stopped_early", False)),
            "train_seconds": entry.get("train_seconds"),
            "final_loss_stages": entry.get("final_loss_stages"),
            **{k: entry.get(k, zoo.get(k)) for k in ("hardware", "torch", "date")},
            "command": entry.get("command"),
            "command_as_run": entry.get("command_as_run"),
            "config_changes": entry.get("config_changes") or [],
            "init": _init_chain(entry.get("init")),
            "metrics": {},
        }
        for key, label in (("synthetic", "synthetic test photo"),
                           ("real", "real-background validation (RainCityscapes)")):
            rows = res.get(name, {}).get(key)
            if rows:
                st = _last(rows)
                card["metrics"][label] = {
                    m: round(statistics.fmean(stage_values(rows, st, m)), 6)
                    for m in ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")}
                card["metrics"][label]["images"] = len(stage_values(rows, st, "psnr_y"))
        cards[name] = card
    path.write_text(json.dumps(cards, indent=1) + "\n")
    (weights_dir / "README.md").write_text(cards_markdown(cards))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ev = sub.add_parser("evaluate", help="score the weights, write benchmarks/results/*.json")
    ev.add_argument("--weights-dir", default=str(ROOT / "sdsen" / "weights"))
    ev.add_argument("--out", default=str(RESULTS))
    ev.add_argument("--real-root", default=None)
    ev.add_argument("--max-real", type=int, default=None, help="score only the first N pairs")
    ev.add_argument("--max-real-multistage", type=int, default=None,
                    help="the same for multi-stage models (8 stages cost 22x DSEN per pixel)")
    ev.add_argument("--sweep-all", action="store_true",
                    help="also run the angle sweep for multi-stage models (slow on a CPU)")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--only", nargs="*", default=None)
    ev.add_argument("--quick", action="store_true", help="fewer draws (a CPU smoke run)")
    ev.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="score only these parts, keeping the others of an existing JSON")
    rp = sub.add_parser("report", help="RESULTS.md tables, figures, the study models' cards")
    rp.add_argument("--results", default=str(RESULTS))
    rp.add_argument("--zoo", default=None, help="zoo.json of scripts/train_pretrained.py")
    cu = sub.add_parser("curve", help="record a run's validation curve on real pairs")
    cu.add_argument("--run", required=True, help="run folder (validated on --val-folder pairs)")
    cu.add_argument("--name", required=True, help="curve name (benchmarks/results/curves/NAME.json)")
    cu.add_argument("--init-steps", type=int, default=0,
                    help="steps behind the run's init_weights (its x-axis offset)")
    cu.add_argument("--real-root", default=None)
    cu.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    {"evaluate": evaluate_all, "report": report, "curve": record_curve}[args.cmd](args)


if __name__ == "__main__":
    main()
