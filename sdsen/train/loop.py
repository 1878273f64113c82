"""The training loop: :func:`fit`, a small trainer whose steps read top to bottom.

Reproducibility contract: the batch of step ``s`` depends only on ``(config.seed, s)`` and the
data (:mod:`sdsen.train.sampling`), and a checkpoint stores
every state the next step reads (weights, Adam moments, scheduler, RNGs, batch-source state).
So ``fit`` for ``2N`` steps and ``fit`` for ``N`` steps then ``fit(..., resume=True)`` to ``2N``
give bit-identical weights on the CPU.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import json
import math
import random
import signal
import statistics
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._version import __version__
from ..models.utils import check_model_config, model_config_dict, unwrap_model
from ..pretrained import initial_weights
from .checkpoint import (
    LATEST,
    equivariant_decoder_payload,
    get_rng_state,
    load_checkpoint,
    load_scheduler_state,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig
from .devices import autocast, resolve_amp, resolve_device
from .distributed import (
    DistInfo,
    all_reduce_mean,
    broadcast_flag,
    cleanup_distributed,
    init_distributed,
)
from .logs import RunLogger, make_grid, refuse_foreign_dir, write_run_files
from .sampling import BatchSource
from .validation import check_val_sizes, validate

__all__ = ["LATEST", "TrainingDivergedError", "fit", "stage_loss"]

# data keys that differ between runs make a resume inexact: warn about them
_EXACTNESS_KEYS = ("batch_size", "patch_size", "lr", "gamma", "weight_decay", "seed", "milestones",
                   "stage_schedule", "augment", "synthetic_mix", "clean_mix", "rain_angles",
                   "zero_links", "stage_warmup", "skip_spikes", "decoder", "rain_preset")
#: the spike guard (``TrainConfig.skip_spikes``) compares a step's gradient norm with the
#: median of this many recent updates, once it knows at least ``_SPIKE_MIN`` of them
_SPIKE_WINDOW, _SPIKE_MIN, _SPIKE_MAX_RUN = 200, 50, 20


def _follow_schedule(optimizer: torch.optim.Optimizer, scheduler: Any,
                     config: TrainConfig) -> None:
    """Make a resumed Adam and ``MultiStepLR`` follow ``config``'s ``lr``, ``milestones`` and
    ``gamma`` from the scheduler's current step on (their checkpointed state holds the old ones).

    >>> opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    >>> sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[100])
    >>> for _ in range(5):
    ...     opt.step(); sched.step()
    >>> _follow_schedule(opt, sched, TrainConfig(lr=2e-3, milestones=[4, 8], gamma=0.5))
    >>> opt.param_groups[0]["lr"]
    0.001
    """
    scheduler.milestones = collections.Counter(config.milestones)
    scheduler.gamma = config.gamma
    scheduler.base_lrs = [config.lr] * len(optimizer.param_groups)
    passed = bisect.bisect_right(config.milestones, scheduler.last_epoch)
    for group in optimizer.param_groups:
        group["initial_lr"] = config.lr
        group["lr"] = config.lr * config.gamma ** passed


def _is_spike(norm: float, recent: collections.deque[float], factor: float) -> bool:
    """Whether a gradient norm is a spike: non-finite, or above ``factor`` x the median of
    ``recent`` norms once there are enough of them (``TrainConfig.skip_spikes``).

    >>> recent, few = collections.deque([1.0] * 60), collections.deque([1.0] * 9)
    >>> _is_spike(50.0, recent, 10.0), _is_spike(5.0, recent, 10.0), _is_spike(50.0, few, 10.0)
    (True, False, False)
    """
    if not math.isfinite(norm):
        return True
    return len(recent) >= _SPIKE_MIN and norm > factor * statistics.median(recent)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def stage_loss(
    stages: list[torch.Tensor], rainy: torch.Tensor, clean: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Official SDSEN loss :math:`\\sum_t \\mathrm{MSE}(R_t, O - B)`.

    Parameters
    ----------
    stages : list of torch.Tensor
        Predicted rain layers ``[R_1, ..., R_T]``, each ``(B, 3, H, W)``.
    rainy, clean : torch.Tensor
        ``O`` and ``B``, each ``(B, 3, H, W)``.

    Returns
    -------
    total : torch.Tensor
        Scalar loss (float32).
    per_stage : list of torch.Tensor
        The ``T`` scalar MSE terms.

    Examples
    --------
    >>> o, b = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    >>> total, parts = stage_loss([torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)], o, b)
    >>> float(total), [float(p) for p in parts]
    (1.0, [0.0, 1.0])
    """
    target = (rainy - clean).float()
    parts = [F.mse_loss(r.float(), target) for r in stages]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total, parts


# --------------------------------------------------------------------------- fit
def _mean_stage_losses(interval: list[torch.Tensor]) -> torch.Tensor:
    """Mean loss per stage over the steps of a log interval, each step's ``(T_step,)`` losses.

    Under a stage schedule an interval may span steps that trained different numbers of
    stages; each stage is averaged over the steps that trained it.

    Examples
    --------
    >>> _mean_stage_losses([torch.tensor([1.0]), torch.tensor([3.0, 4.0])])
    tensor([2., 4.])
    """
    width = max(len(p) for p in interval)
    if all(len(p) == width for p in interval):
        return torch.stack(interval).mean(0)
    nan = float("nan")
    padded = torch.stack([F.pad(p, (0, width - len(p)), value=nan) for p in interval])
    return padded.nanmean(0)


class _StopRequest:
    """Turns SIGTERM and SIGINT (when not ignored) into a request to stop after the current
    step, so the checkpoint written then is a consistent one; a second signal stops at once
    (``KeyboardInterrupt``), keeping the last checkpoint written."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _warmed_up(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """The learning rates times ``factor`` inside the block, restored exactly after it (the
    scheduler's own values are untouched: ``TrainConfig.stage_warmup``)."""
    if factor == 1.0:
        yield
        return
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr


def _decoder_switch(payload: dict[str, Any], net: nn.Module) -> dict[str, list[Any]]:
    """``{"decoder": ["official", "equivariant"]}`` when the checkpoint's model has the official
    decoder and ``net`` is the same model with the equivariant one (a resume may switch it:
    :func:`~sdsen.train.checkpoint.equivariant_decoder_payload`), else ``{}``."""
    saved, current = payload.get("model_config"), model_config_dict(net)
    if not saved or not current or saved.get("decoder") != "official":
        return {}
    if current != {**saved, "decoder": "equivariant"}:  # (a z2 model has no equivariant one)
        return {}
    return {"decoder": ["official", "equivariant"]}


def _zero_links(net: nn.Module) -> None:
    """Set the weights of the link convolutions to zero (``TrainConfig.zero_links``): each link
    then gives ``LeakyReLU(bias)``, what stage 1 reads, whatever the previous stage did."""
    links = getattr(net, "connect_layers", None)
    with torch.no_grad():
        for link in links or []:
            link.conv0.weight.zero_()


def _check_stage_schedule(config: TrainConfig, net: nn.Module) -> None:
    """Refuse a stage schedule asking for more stages than the model has, before training."""
    if config.stage_schedule is None:
        return
    have = getattr(getattr(net, "config", None), "stages", None)
    most = max(n for _, n in config.stage_schedule)
    if have is None or most > have:
        raise ValueError(
            f"TrainConfig.stage_schedule {config.stage_schedule} asks for {most} stages, but "
            f"the model has {have if have is not None else 'no stage count'}. Fix: lower the "
            "schedule's stage counts or train a model with more stages (ModelConfig.stages)."
        )


def _run_config(config: TrainConfig, model: nn.Module, info: DistInfo) -> dict[str, Any]:
    return {
        "train": config.to_dict(),
        "model": model_config_dict(model),
        "world_size": info.world_size,
        "sdsen_version": __version__,
        "torch_version": torch.__version__,
    }


def fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    config: TrainConfig | None = None,
    run_dir: str | Path = "runs/default",
    resume: bool = True,
    *,
    progress: bool = True,
    max_seconds: float | None = None,
    data_changes: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Train ``model`` with the official SDSEN objective; log, checkpoint, resume exactly.

    Parameters
    ----------
    model : torch.nn.Module
        Network with ``forward(x) -> [R_1, ..., R_T]`` and a ``config`` dataclass
        (:func:`sdsen.models.build_model`). Trained in place (moved to the training device).
    train_data : Dataset or iterable
        Either a map-style dataset of ``(rainy, clean)`` pairs, each ``(3, h, w)`` patches of
        ``config.patch_size`` (batched by a DataLoader whose order depends only on
        ``(config.seed, step)``), or an iterable of ready batches ``(rainy, clean)``, each
        ``(B, 3, h, w)`` (e.g. :class:`sdsen.data.DeviceRainBatches`; cycled if finite; its
        ``state_dict`` / ``load_state_dict``, when present, make resume exact).
    val_data : Dataset or iterable, optional
        ``(rainy, clean)`` pairs, each ``(3, H, W)``, any size; scored every
        ``config.val_every`` steps and at the end (at most ``config.val_images`` images).
    config : TrainConfig, optional
        Hyper-parameters (default ``TrainConfig.preset('quick')``).
    run_dir : str or pathlib.Path
        Run folder: ``config.json``, marker, ``metrics.jsonl``, TensorBoard events,
        ``latest.pt``, ``step_N.pt``.
    resume : bool
        Continue from ``run_dir/latest.pt`` if it exists. ``config.json`` then holds the new
        settings; ``metrics.jsonl`` gets a ``resume`` line at the checkpoint's step with the
        settings that changed (``{"grad_clip": [None, 1.0]}``; empty when none did), so a
        run's recipe as run can be read back (:func:`sdsen.train.logs.config_changes`).
    progress : bool
        Show a tqdm progress bar (step, loss, last validation PSNR).
    max_seconds : float, optional
        Train in chunks: once this many seconds of this call have passed, finish the current
        step, write ``latest.pt`` and return early (``history['stopped_early']``). Calling
        ``fit`` again with ``resume=True`` continues exactly where the chunk ended, as if
        never stopped. A SIGTERM or Ctrl-C (SIGINT) stops the same way, after the step under
        way (a second one stops at once, keeping the last checkpoint written).
    data_changes : dict, optional
        On resume, settings of ``train_data`` that the caller changed on purpose, ``{key: [old,
        new]}`` (``sdsen train --change-recipe --rain-preset``): recorded in the ``resume``
        line with the config's changes.

    Returns
    -------
    dict
        History of this call: ``step``, ``loss``, ``lr`` (lists, one entry per step trained
        here), ``loss_stages`` (per step, one float per stage), ``val`` (list of validation
        results with their ``step``), ``start_step``, ``final_step``, ``seconds``,
        ``stopped_early`` (``max_seconds`` ran out, or a signal came, before ``config.steps``),
        ``signal`` (the number of the signal that stopped it, else None), ``config_changes`` (settings changed on resume, ``{key: [old, new]}``).

    Raises
    ------
    FileExistsError
        ``run_dir`` is a file, or a folder without the run marker that holds files named like
        a run's records: refused before anything is written (see
        :func:`~sdsen.train.logs.refuse_foreign_dir`).
    ValueError
        A validation image is smaller than SSIM's 11x11 window (checked before training).
    TrainingDivergedError
        The loss became NaN/inf (nothing is saved after the last good checkpoint).
    sdsen.models.utils.ConfigMismatchError
        ``run_dir/latest.pt`` belongs to a different architecture.

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DistributedDataParallel
    (NCCL on CUDA, gloo on CPU), ``config.batch_size`` is the global batch split over the
    processes, and only rank 0 writes files. On CUDA, ``cudnn.benchmark`` is enabled for the
    duration of the call and mixed precision follows ``config.amp``.

    Examples
    --------
    >>> import tempfile, torch
    >>> from torch import nn
    >>> class Tiny(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(3, 3, 3, padding=1)
    ...     def forward(self, x):
    ...         return [self.conv(x)]
    >>> data = [(torch.rand(3, 8, 8), torch.rand(3, 8, 8)) for _ in range(4)]
    >>> class Pairs(torch.utils.data.Dataset):
    ...     def __len__(self): return len(data)
    ...     def __getitem__(self, i): return data[i]
    >>> cfg = TrainConfig.preset("quick", steps=3, batch_size=2, tensorboard=False)
    >>> hist = fit(Tiny(), Pairs(), None, cfg, tempfile.mkdtemp(), progress=False)
    >>> len(hist["loss"]), hist["final_step"]
    (3, 3)
    """
    config = config if config is not None else TrainConfig.preset("quick")
    config.validate()
    run_dir = Path(run_dir)
    refuse_foreign_dir(run_dir, "run_dir")
    check_val_sizes(val_data, config.val_images)
    pre_device = resolve_device(config.device)
    info = init_distributed(pre_device.type)
    try:
        trainer = _Trainer(model, config, run_dir, info)
        trainer.restore(resume, data_changes or {})
        trainer.start(train_data, val_data)
        return trainer.run(progress=progress, max_seconds=max_seconds)
    finally:
        cleanup_distributed(info)


def _check_batch(config: TrainConfig, info: DistInfo) -> None:
    """Refuse a global batch smaller than the number of processes; warn when it does not split."""
    if config.batch_size < info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} is smaller than the {info.world_size} processes"
        )
    if config.batch_size % info.world_size:
        warnings.warn(
            f"batch_size {config.batch_size} is not divisible by {info.world_size} processes; "
            f"each uses {config.batch_size // info.world_size}",
            stacklevel=4,
        )


def _resumed_changes(payload: dict[str, Any], config: TrainConfig) -> dict[str, list[Any]]:
    """Recipe fields that differ between the checkpoint and ``config``: ``{key: [old, new]}``.

    Fields the checkpoint predates count at their defaults, so turning one on is recorded.
    """
    saved = payload.get("train_config") or {}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.default is not dataclasses.MISSING}
    saved_cfg = json.loads(json.dumps({**defaults, **saved} if saved else {}))
    new_cfg = json.loads(json.dumps(config.to_dict()))
    return {k: [saved_cfg[k], v] for k, v in new_cfg.items()
            if k in saved_cfg and saved_cfg[k] != v}


class _Trainer:
    """One call of :func:`fit`: the state a step reads and writes, and the steps of the loop.

    Used in this order: ``restore(resume)`` (checkpoint or initial weights), ``start(...)``
    (run files, logs, batches, random streams), ``run(...)`` (the loop).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, run_dir: Path,
                 info: DistInfo) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.device = resolve_device(config.device, info.local_rank)
        self.amp_dtype = resolve_amp(config.amp, self.device)
        _check_batch(config, info)
        self.net = unwrap_model(model)
        _check_stage_schedule(config, self.net)
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=config.milestones, gamma=config.gamma
        )
        self.ckpt_path = run_dir / LATEST
        self.payload: dict[str, Any] | None = None
        self.changes: dict[str, list[Any]] = {}
        self.step = 0
        self.last_good: int | None = None  # step of the last checkpoint written (or resumed)
        self.spike_norms: collections.deque[float] = collections.deque(maxlen=_SPIKE_WINDOW)

    # ---------------------------------------------------------------- before the loop
    def restore(self, resume: bool, data_changes: dict[str, list[Any]]) -> None:
        """Load ``latest.pt`` when resuming (weights, optimizer, scheduler, step), else the
        initial weights (``config.init_weights``); zero the links if the recipe says so."""
        config, net = self.config, self.net
        if resume and self.ckpt_path.is_file():
            payload = load_checkpoint(self.ckpt_path, map_location="cpu")
            model_changes = _decoder_switch(payload, net)
            if model_changes:
                payload = equivariant_decoder_payload(payload)
            check_model_config(payload.get("model_config"), net, source=str(self.ckpt_path))
            net.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            load_scheduler_state(self.scheduler, payload["scheduler"])
            self.step = self.last_good = int(payload["step"])
            self.changes = _resumed_changes(payload, config) | model_changes | data_changes
            if self.changes.keys() & {"lr", "milestones", "gamma"}:
                _follow_schedule(self.optimizer, self.scheduler, config)
            changed = [k for k in _EXACTNESS_KEYS if k in self.changes]
            if changed and self.info.is_main:
                warnings.warn(
                    f"resuming {self.ckpt_path} with changed {changed}: the continuation is not "
                    "the same as an uninterrupted run",
                    stacklevel=3,
                )
            self.spike_norms.extend(payload.get("spike_norms", ()))
            self.payload = payload
        elif not resume and self.ckpt_path.is_file() and self.info.is_main:
            warnings.warn(f"resume=False: {self.ckpt_path} will be overwritten", stacklevel=3)
        if self.payload is None and config.init_weights:
            init_cfg, init_state, init_source = initial_weights(config.init_weights)
            check_model_config(init_cfg, net, source=init_source)
            net.load_state_dict(init_state)
        # the schedule the run followed so far is the checkpoint's (a resume may change it)
        saved = (self.payload or {}).get("train_config")
        before = TrainConfig.from_dict(saved) if saved else config
        if config.zero_links and not before.multi_stage_before(self.step):
            _zero_links(net)

    def start(self, train_data: Any, val_data: Any) -> None:
        """Write the run files, open the logs, set up the batches, the random streams, the
        wrapped model (compile, DDP) and the gradient scaler."""
        config, info, payload = self.config, self.info, self.payload
        if info.is_main:
            write_run_files(self.run_dir, _run_config(config, self.net, info))
            for stale in self.run_dir.glob(".*.pt.*.tmp"):  # left by a process killed mid-save
                stale.unlink(missing_ok=True)
        self.logger = RunLogger(self.run_dir, info.is_main, config.tensorboard, self.step)
        if payload is not None:
            # config.json holds the latest settings only; this line keeps what changed, and when
            self.logger.event("resume", self.step, changed=self.changes)
        self.source = BatchSource(train_data, config, info, self.step, self.device)
        if payload is not None:
            self.source.load_state_dict(payload.get("data_state"))
            set_rng_state(payload["rng"])
        else:
            torch.manual_seed(config.seed + info.rank)
            np.random.seed((config.seed + info.rank) & 0xFFFFFFFF)
            random.seed(config.seed + info.rank)
        self.val_data = val_data
        self.train_model: nn.Module = self.net
        if config.compile:
            self.train_model = torch.compile(self.train_model)  # type: ignore[assignment]
        if info.distributed:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.train_model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        if payload is not None and payload.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(payload["scaler"])
        self.history: dict[str, Any] = {
            "step": [], "loss": [], "loss_stages": [], "lr": [], "val": [],
            "start_step": self.step, "final_step": self.step, "seconds": 0.0,
            "stopped_early": False, "signal": None, "config_changes": self.changes,
        }
        self.interval: list[torch.Tensor] = []  # per-stage losses of each step since the log
        self.norms: list[torch.Tensor] = []  # gradient norms before clipping, since the log
        self.skipped = self.skipped_run = 0  # skipped updates since the log, and in a row
        self.last_val = float("nan")

    # ---------------------------------------------------------------- the loop
    def run(self, *, progress: bool, max_seconds: float | None) -> dict[str, Any]:
        """Train to ``config.steps`` (or until ``max_seconds`` or a signal); the history."""
        config = self.config
        bench = torch.backends.cudnn.benchmark
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.pbar = tqdm(total=config.steps, initial=self.step, desc="train", dynamic_ncols=True,
                         disable=not (progress and self.info.is_main))
        self.t0 = time.perf_counter()
        stop = _StopRequest()  # SIGTERM / Ctrl-C: finish the step, save it, return
        try:
            self.train_model.train()
            while self.step < config.steps:
                rainy, clean = self.source.next_batch()
                stages, values, lr = self.train_step(rainy, clean)
                if self.step % config.log_every == 0 or self.step == config.steps:
                    self.log(values, lr)
                self.log_images(rainy, clean, stages)
                self.validate_if_due()
                self.checkpoint_if_due()
                if self.stop_if_asked(max_seconds, stop):
                    break
        finally:
            stop.restore()
            self.pbar.close()
            self.logger.close()
            torch.backends.cudnn.benchmark = bench
        self.history["final_step"] = self.step
        self.history["seconds"] = time.perf_counter() - self.t0
        self.history["last_val_psnr"] = None if math.isnan(self.last_val) else self.last_val
        return self.history

    def train_step(self, rainy: torch.Tensor,
                   clean: torch.Tensor) -> tuple[list[torch.Tensor], list[float], float]:
        """One update (or one skipped spike): the stages' outputs, their losses, the lr."""
        config, optimizer, scaler = self.config, self.optimizer, self.scaler
        n_stages = config.stages_at(self.step)
        if self.step > 0 and n_stages != config.stages_at(self.step - 1):
            self.spike_norms.clear()  # a new loss, a new gradient scale: learn its median anew
        with autocast(self.device, self.amp_dtype):
            stages = self.train_model(rainy) if n_stages is None else self.train_model(
                rainy, stages=n_stages)
        loss, parts = stage_loss(stages, rainy, clean)
        parts_t = torch.stack([p.detach() for p in parts])
        values = parts_t.cpu().tolist()  # the one host sync of the step
        loss_value = float(sum(values))
        if broadcast_flag(not math.isfinite(loss_value), self.info, self.device):
            raise TrainingDivergedError(
                f"training loss became {loss_value} at step {self.step + 1}; stopped. "
                f"{self._last_good_text()}. Try a lower learning rate (--lr), gradient clipping "
                "(grad_clip, --grad-clip) or no mixed precision (amp='off', --amp off)."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # true gradients: logged norm, clipping threshold
        clip = config.grad_clip if config.grad_clip is not None else math.inf  # inf: measure
        self.norms.append(torch.nn.utils.clip_grad_norm_(self.net.parameters(), clip).detach())
        norm = float(self.norms[-1]) if config.skip_spikes else None  # a host sync, if guarded
        if norm is not None and _is_spike(norm, self.spike_norms, config.skip_spikes):
            self.skipped += 1
            self.skipped_run += 1
            if self.skipped_run >= _SPIKE_MAX_RUN:
                raise TrainingDivergedError(
                    f"{self.skipped_run} steps in a row up to step {self.step + 1} had gradient "
                    f"norms above {config.skip_spikes} x the recent median (skip_spikes); "
                    f"stopped. {self._last_good_text()}. Try a lower learning rate (--lr)."
                )
            lr = optimizer.param_groups[0]["lr"]
        else:
            self.skipped_run = 0
            if norm is not None:
                self.spike_norms.append(norm)
            with _warmed_up(optimizer, config.warmup_factor(self.step)):
                scaler.step(optimizer)
                lr = optimizer.param_groups[0]["lr"]
        scaler.update()
        with warnings.catch_warnings():
            # fp16: GradScaler skips the first steps while calibrating its scale
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
            self.scheduler.step()
        self.step += 1
        self.interval.append(parts_t)
        for key, value in (("step", self.step), ("loss", loss_value), ("loss_stages", values),
                           ("lr", lr)):
            self.history[key].append(value)
        self.pbar.update(1)
        return stages, values, lr

    def log(self, values: list[float], lr: float) -> None:
        """The mean losses of the steps since the last log, to metrics.jsonl and TensorBoard."""
        config, logger, step = self.config, self.logger, self.step
        mean_parts = all_reduce_mean(_mean_stage_losses(self.interval), self.info).cpu()
        self.interval.clear()
        grad_norm_max = float(torch.stack(self.norms).max())
        self.norms.clear()
        if self.skipped:
            logger.scalar("train/skipped_steps", self.skipped, step)
        total = float(mean_parts.sum())
        logger.event(
            "train",
            step,
            loss=total,
            loss_stages=[float(p) for p in mean_parts],
            lr=lr,
            grad_norm_max=grad_norm_max,
            **({"skipped": self.skipped} if config.skip_spikes else {}),
            stages=len(values),
            elapsed_s=round(time.perf_counter() - self.t0, 3),
        )
        logger.scalar("train/loss", total, step)
        logger.scalar("train/grad_norm_max", grad_norm_max, step)
        for t, p in enumerate(mean_parts):
            logger.scalar(f"train/loss_stage{t}", float(p), step)
        logger.scalar("train/lr", lr, step)
        self.skipped = 0
        self.pbar.set_postfix(loss=f"{total:.4g}", val_psnr=f"{self.last_val:.2f}", refresh=False)

    def log_images(self, rainy: torch.Tensor, clean: torch.Tensor,
                   stages: list[torch.Tensor]) -> None:
        """Rainy, derained and clean crops of the batch to TensorBoard, when due."""
        every = self.config.log_images_every
        if self.info.is_main and every and self.step % every == 0:
            k = min(4, rainy.shape[0])
            derained = (rainy[:k] - stages[-1][:k].detach().float()).clamp(0, 1)
            grid = make_grid(torch.cat([rainy[:k], derained, clean[:k]]).float(), nrow=k)
            self.logger.image("train/rainy_derained_clean", grid, self.step)

    def validate_if_due(self) -> None:
        """Score the validation pairs at every stage trained, when due (main process)."""
        config, step = self.config, self.step
        due = self.val_data is not None and (
            (config.val_every and step % config.val_every == 0) or step == config.steps)
        if not (due and self.info.is_main):
            return
        res = validate(self.net, self.val_data, self.device, config.val_images,
                       amp_dtype=self.amp_dtype, stages=config.stages_at(step - 1))
        self.history["val"].append({"step": step, **res})
        if res["psnr"]:
            self.last_val = res["psnr"][-1]
            self.logger.event("val", step, **res)
            for t in range(len(res["psnr"])):
                for key in ("psnr", "ssim", "psnr_y", "ssim_y"):
                    self.logger.scalar(f"val/{key}_stage{t}", res[key][t], step)
            loss = self.history["loss"][-1]
            self.pbar.set_postfix(loss=f"{loss:.4g}", val_psnr=f"{self.last_val:.2f}")

    def checkpoint_if_due(self) -> None:
        """Write ``latest.pt`` (and ``step_N.pt``) when due, after checking the weights."""
        config, step = self.config, self.step
        save_latest = (config.ckpt_every and step % config.ckpt_every == 0) or (
            step == config.steps)
        keep = config.keep_every and step % config.keep_every == 0
        if save_latest or keep:
            self._check_weights()  # on every rank (the weights are the same on all)
        if save_latest:
            if self.info.is_main:
                self._save(self.ckpt_path)
            self.last_good = step  # on every rank, so that all agree when a stop comes
        if self.info.is_main and keep:
            self._save(self.run_dir / f"step_{step}.pt")

    def stop_if_asked(self, max_seconds: float | None, stop: _StopRequest) -> bool:
        """Whether to stop now (time is up, or a signal came), with a checkpoint of this step."""
        if self.step >= self.config.steps or (max_seconds is None and stop.signum is None):
            return False
        late = max_seconds is not None and time.perf_counter() - self.t0 >= max_seconds
        if not broadcast_flag(late or stop.signum is not None, self.info, self.device):
            return False
        # every process stops at this step, with a checkpoint of it
        if self.step != self.last_good:
            self._check_weights()
            if self.info.is_main:
                self._save(self.ckpt_path)
                self.last_good = self.step
        self.history["stopped_early"] = True
        self.history["signal"] = stop.signum
        return True

    # ---------------------------------------------------------------- helpers
    def _last_good_text(self) -> str:
        if self.last_good is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {self.ckpt_path} (step {self.last_good})"

    def _check_weights(self) -> None:
        """Stop before saving weights that are NaN/inf (the loss of their step was finite)."""
        finite = bool(torch.stack([torch.isfinite(q).all() for q in self.net.parameters()]).all())
        if broadcast_flag(not finite, self.info, self.device):
            raise TrainingDivergedError(
                f"the weights became NaN/inf in step {self.step} (its loss was finite); stopped "
                f"without saving them. {self._last_good_text()}. Try a lower learning rate "
                "(--lr), gradient clipping (grad_clip, --grad-clip) or no mixed precision "
                "(amp='off', --amp off)."
            )

    def _save(self, path: Path) -> None:
        extra = {**({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
                 **({"spike_norms": list(self.spike_norms)} if self.config.skip_spikes else {})}
        save_checkpoint(path, self.net, self.optimizer, self.scheduler, self.step,
                        self.config.to_dict(), data_state=self.source.state_dict(),
                        rng=get_rng_state(), extra=extra or None)
