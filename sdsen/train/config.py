"""Training configuration: one JSON-serialisable dataclass with named presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["PRESETS", "TrainConfig"]

_AMP_CHOICES = ("auto", "bf16", "fp16", "off")


@dataclass
class TrainConfig:
    """Everything :func:`sdsen.train.fit` needs besides the model and the data.

    The loss is the official one: :math:`\\sum_t \\mathrm{MSE}(R_t, O - B)` over the stage
    outputs ``[R_1, ..., R_T]``. The optimiser is Adam, the schedule a ``MultiStepLR``
    (learning rate times ``gamma`` at every step in ``milestones``).

    Parameters
    ----------
    name : str
        Name of the preset this config started from (informational).
    batch_size : int
        Global batch size (split over processes under DDP).
    patch_size : int
        Side of the square training patches, in pixels.
    steps : int
        Total number of optimiser steps.
    lr : float
        Adam learning rate.
    milestones : list of int
        Steps at which the learning rate is multiplied by ``gamma``.
    gamma : float
        Learning-rate decay factor.
    weight_decay : float
        Adam weight decay (0 in the official recipe).
    seed : int
        Seed of the data order and all RNGs; data depends only on ``(seed, step)``.
    device : str
        ``'auto'`` (CUDA, then MPS, then CPU) or any ``torch.device`` string.
    amp : {'auto', 'bf16', 'fp16', 'off'}
        Mixed precision on CUDA (``'auto'`` = bf16 where supported). Ignored on CPU / MPS.
    log_every : int
        Steps between training-loss log events (TensorBoard, ``metrics.jsonl``).
    val_every : int
        Steps between validations (0 disables; the last step is always validated).
    val_images : int or None
        Validate on at most this many images of ``val_data`` (None: all).
    ckpt_every : int
        Steps between writes of ``latest.pt`` (also written at the end).
    keep_every : int
        Steps between kept snapshots ``step_N.pt`` (0 disables).
    log_images_every : int
        Steps between image grids (rainy / derained / clean) in TensorBoard (0 disables).
    num_workers : int
        DataLoader workers when ``train_data`` is a map-style dataset.
    grad_clip : float or None
        Clip the global gradient norm to this value (None: no clipping).
    compile : bool
        Wrap the model in ``torch.compile``.
    tensorboard : bool
        Write TensorBoard event files (needs the ``tensorboard`` package).
    init_weights : str or None
        Start a new run from these weights (fine-tuning): the name of shipped weights
        (:func:`sdsen.list_pretrained`), an ``sdsen-weights/1`` file or a training checkpoint.
        Their model config must match the model's. Ignored when a run is resumed.
    stage_schedule : list of [step, stages] or None
        Train with fewer stages early on: from ``step`` on, the loss covers the first
        ``stages`` stages only (the stages share their weights, and a stage costs as much as
        the whole one-stage network). ``[[0, 1], [3000, 2], [5000, 8]]`` trains one stage for
        3,000 steps, two until step 5,000, then all. Validation scores the stages trained.
        None: every stage at every step (the official recipe).
    zero_links : bool
        Start the weights of the link convolutions (``connect_layers``) at zero, so that when
        the schedule first trains more than one stage, stage ``t + 1`` starts as the trained
        stage applied to the image derained so far, instead of reading random links. Applied
        at step 0, or on resume while no step has trained more than one stage yet (until then
        the links' weights are unused, so the run is the same).
    stage_warmup : int
        After each step where the stage schedule adds stages, ramp the learning rate up
        linearly over this many steps (from ``1 / stage_warmup`` of it). Adam's first updates
        of weights that had no gradient before (the links) are as large as the learning rate
        on every weight at once, enough to throw the new stages far off; 0: no ramp.
    augment : bool
        Folder training data: a random rot90 / mirror of each patch (rain at every
        orientation; the official recipe has none).
    synthetic_mix : float
        Folder training data: the share of patches whose rain is drawn by :mod:`sdsen.rain`
        over the pair's clean patch instead of the pair's own rain.
    clean_mix : float
        Folder training data: the share of patches with no rain at all (rainy = clean), to
        teach the model to leave clean images alone.
    rain_angles : [low, high] or None
        Streak angle range in degrees of the synthetic rain (None: the rain preset's).
    skip_spikes : float or None
        Skip the update of a step whose global gradient norm exceeds ``skip_spikes`` times
        the median norm of the last 200 updates (once 50 are known): one bad batch, or the
        first steps of an instability, then cannot throw the weights and Adam's moments far
        off. The step still counts (its batch is consumed). 20 skipped steps in a row stop the
        run with :class:`TrainingDivergedError`. The window starts afresh where
        ``stage_schedule`` changes the number of stages (the loss, and with it the gradient
        scale, changes by design). None: every step updates.
    val_crop : int or None
        Validate on the central ``val_crop`` x ``val_crop`` crop of each image (None: whole
        images). Whole images of a real-photo set cost minutes per validation on a CPU.

    Examples
    --------
    >>> cfg = TrainConfig.preset("official")
    >>> cfg.batch_size, cfg.patch_size, cfg.lr, cfg.steps, cfg.milestones
    (50, 64, 0.0005, 20000, [15000, 17500])
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    name: str = "custom"
    batch_size: int = 50
    patch_size: int = 64
    steps: int = 20_000
    lr: float = 5e-4
    milestones: list[int] = field(default_factory=lambda: [15_000, 17_500])
    gamma: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    log_every: int = 10
    val_every: int = 1000
    val_images: int | None = 16
    ckpt_every: int = 500
    keep_every: int = 5000
    log_images_every: int = 1000
    num_workers: int = 0
    grad_clip: float | None = None
    compile: bool = False
    tensorboard: bool = True
    init_weights: str | None = None
    stage_schedule: list[list[int]] | None = None
    zero_links: bool = False
    stage_warmup: int = 0
    augment: bool = False
    synthetic_mix: float = 0.0
    clean_mix: float = 0.0
    rain_angles: list[float] | None = None
    skip_spikes: float | None = None
    val_crop: int | None = None

    def __post_init__(self) -> None:
        self.milestones = [int(m) for m in self.milestones]
        if self.stage_schedule is not None:
            self.stage_schedule = [[int(a), int(b)] for a, b in self.stage_schedule]
        if self.rain_angles is not None:
            self.rain_angles = [float(a) for a in self.rain_angles]
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` with a clear message on an inconsistent config."""
        positive = ("batch_size", "patch_size", "steps", "log_every")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("val_every", "ckpt_every", "keep_every", "log_images_every", "num_workers",
                     "stage_warmup"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.amp not in _AMP_CHOICES:
            raise ValueError(f"TrainConfig.amp must be one of {_AMP_CHOICES}, got {self.amp!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.skip_spikes is not None and self.skip_spikes <= 1:
            raise ValueError(
                f"TrainConfig.skip_spikes must be > 1 or None, got {self.skip_spikes}")
        if sorted(self.milestones) != self.milestones:
            raise ValueError(f"TrainConfig.milestones must be increasing, got {self.milestones}")
        sched = self.stage_schedule
        if sched is not None:
            starts = [s for s, _ in sched]
            if not sched or starts[0] != 0 or sorted(set(starts)) != starts or any(
                    n < 1 for _, n in sched):
                raise ValueError(
                    "TrainConfig.stage_schedule must be [[0, n0], [step1, n1], ...] with "
                    f"increasing steps starting at 0 and stage counts >= 1, got {sched}"
                )
        for name in ("synthetic_mix", "clean_mix"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.synthetic_mix + self.clean_mix > 1:
            raise ValueError(
                f"TrainConfig.synthetic_mix + clean_mix must be at most 1, got "
                f"{self.synthetic_mix} + {self.clean_mix}"
            )
        if self.rain_angles is not None and (
                len(self.rain_angles) != 2 or self.rain_angles[0] > self.rain_angles[1]):
            raise ValueError(
                f"TrainConfig.rain_angles must be [low, high] degrees, got {self.rain_angles}")
        if self.val_crop is not None and self.val_crop < 11:
            raise ValueError(
                f"TrainConfig.val_crop must be None or >= 11 (SSIM's window), got {self.val_crop}")

    def multi_stage_before(self, step: int) -> bool:
        """Whether any step before ``step`` trained more than one stage (None counts as all,
        so as more than one for a multi-stage model).

        Examples
        --------
        >>> cfg = TrainConfig(stage_schedule=[[0, 1], [100, 2]])
        >>> cfg.multi_stage_before(100), cfg.multi_stage_before(101)
        (False, True)
        """
        if step <= 0:
            return False
        if self.stage_schedule is None:
            return True
        return any(n > 1 for start, n in self.stage_schedule if start < step)

    def warmup_factor(self, step: int) -> float:
        """Learning-rate factor of ``step`` (0-based) under :attr:`stage_warmup`.

        Examples
        --------
        >>> cfg = TrainConfig(stage_schedule=[[0, 1], [10, 2]], stage_warmup=4)
        >>> [cfg.warmup_factor(s) for s in (9, 10, 11, 13, 14)]
        [1.0, 0.25, 0.5, 1.0, 1.0]
        """
        if not self.stage_warmup or self.stage_schedule is None:
            return 1.0
        starts = [s for (s, n), (_, before) in zip(self.stage_schedule[1:], self.stage_schedule)
                  if n > before and s <= step]
        if not starts:
            return 1.0
        done = step - max(starts) + 1
        return min(1.0, done / self.stage_warmup)

    def stages_at(self, step: int) -> int | None:
        """Stages trained at ``step`` (0-based) by :attr:`stage_schedule`; None: all.

        Examples
        --------
        >>> cfg = TrainConfig(stage_schedule=[[0, 1], [100, 4]])
        >>> cfg.stages_at(0), cfg.stages_at(99), cfg.stages_at(100)
        (1, 1, 4)
        >>> TrainConfig().stages_at(5) is None
        True
        """
        if self.stage_schedule is None:
            return None
        n = self.stage_schedule[0][1]
        for start, stages in self.stage_schedule:
            if step >= start:
                n = stages
        return n

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """A named preset, optionally with some fields overridden.

        ``'official'``
            The recipe of the SDSEN code: batch 50 of 64 x 64 patches, Adam 5e-4, 20,000 steps,
            learning rate x0.1 at 15,000 and 17,500, no gradient clipping. (The official trainer
            steps its scheduler before the optimiser, one step earlier, and its random crops
            never take the last offset; neither detail is copied.)
        ``'quick'``
            A smoke run of minutes on a 2-core CPU: batch 4 of 32 x 32 patches, 150 steps
            (learning rate and clipping as ``'cpu'``).
        ``'cpu'``
            The official-size model in about an hour on a 2-core CPU: batch 4 of 40 x 40
            patches, 1,000 steps, learning rate 1e-3 with the global gradient norm clipped to 1,
            x0.1 at 75 % and 87.5 % of the steps, a checkpoint every 50 steps. Why these
            numbers: ``docs/RESULTS.md``, *the cpu preset*.

        Changing ``steps`` through ``overrides`` rescales the milestones proportionally (merging
        any that round to the same step) unless ``milestones`` is overridden as well.

        Parameters
        ----------
        name : {'official', 'quick', 'cpu'}
        **overrides
            Field values replacing the preset's.

        Returns
        -------
        TrainConfig
        """
        if name not in PRESETS:
            raise ValueError(f"unknown training preset {name!r}; choose from {sorted(PRESETS)}")
        base = dict(PRESETS[name])
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {sorted(unknown)}")
        if "steps" in overrides and "milestones" not in overrides:
            old, new = base["steps"], int(overrides["steps"])
            # distinct: for a very short run two milestones may round to one step (a repeated
            # milestone would apply gamma twice there)
            base["milestones"] = sorted({max(1, round(m * new / old)) for m in base["milestones"]})
        base.update(overrides)
        base["name"] = name
        return cls(**base)

    # ------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-serialisable)."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


#: Field values of the named presets (see :meth:`TrainConfig.preset`).
PRESETS: dict[str, dict[str, Any]] = {
    "official": {
        "batch_size": 50,
        "patch_size": 64,
        "steps": 20_000,
        "lr": 5e-4,
        "milestones": [15_000, 17_500],
        "val_every": 1000,
        "ckpt_every": 500,
        "keep_every": 5000,
        "log_every": 10,
        "log_images_every": 1000,
        "val_images": 16,
        "num_workers": 2,
    },
    "quick": {
        "batch_size": 4,
        "patch_size": 32,
        "steps": 150,
        "lr": 1e-3,
        "grad_clip": 1.0,
        "milestones": [112, 131],
        "val_every": 50,
        "ckpt_every": 25,
        "keep_every": 0,
        "log_every": 5,
        "log_images_every": 50,
        "val_images": 2,
        "num_workers": 0,
    },
    "cpu": {
        "batch_size": 4,
        "patch_size": 40,
        "steps": 1000,
        "lr": 1e-3,
        "grad_clip": 1.0,
        "milestones": [750, 875],
        "val_every": 250,
        "ckpt_every": 50,
        "keep_every": 500,
        "log_every": 10,
        "log_images_every": 250,
        "val_images": 4,
        "num_workers": 0,
    },
}
