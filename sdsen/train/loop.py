"""The training loop: :func:`fit`.

Reproducibility contract: the batch of step ``s`` depends only on ``(config.seed, s)`` and the
data, never on DataLoader internals (worker count, iterator restarts), and a checkpoint stores
every state the next step reads (weights, Adam moments, scheduler, RNGs, batch-source state).
So ``fit`` for ``2N`` steps and ``fit`` for ``N`` steps then ``fit(..., resume=True)`` to ``2N``
give bit-identical weights on the CPU.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import functools
import json
import math
import random
import signal
import statistics
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from .._version import __version__
from ..data.pairs import split_pair
from ..metrics import SSIM_WINDOW, psnr, quantize_8bit, ssim
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
from .distributed import (
    DistInfo,
    all_reduce_mean,
    broadcast_flag,
    cleanup_distributed,
    init_distributed,
)
from .logs import RunLogger, make_grid, refuse_foreign_dir, write_run_files

__all__ = [
    "LATEST",
    "TrainingDivergedError",
    "fit",
    "resolve_amp",
    "resolve_device",
    "stage_loss",
    "validate",
]

# data keys that differ between runs make a resume inexact: warn about them
_EXACTNESS_KEYS = ("batch_size", "patch_size", "lr", "gamma", "weight_decay", "seed", "milestones",
                   "stage_schedule", "augment", "synthetic_mix", "clean_mix", "rain_angles",
                   "zero_links", "stage_warmup", "skip_spikes", "decoder")
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


# --------------------------------------------------------------------------- devices
def resolve_device(spec: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """Pick the training device.

    Parameters
    ----------
    spec : str or torch.device
        ``'auto'``: CUDA (``cuda:local_rank``), then Apple MPS, then CPU. Anything else is passed
        to :class:`torch.device`; a CUDA/MPS request on a machine without one raises ValueError.
    local_rank : int
        GPU index under DDP.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(spec, torch.device):
        device = spec
    elif spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        try:
            device = torch.device(spec)
        except RuntimeError as exc:
            raise ValueError(f"invalid device {spec!r}: {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {spec!r} requested but Apple MPS is not available")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``amp`` in ``{'auto', 'bf16', 'fp16', 'off'}`` on ``device``.

    Mixed precision is used on CUDA only; ``'auto'`` means bf16 where the GPU supports it.

    Examples
    --------
    >>> resolve_amp("auto", torch.device("cpu")) is None
    True
    """
    if amp == "off" or device.type != "cuda":
        if amp in ("bf16", "fp16") and device.type != "cuda":
            warnings.warn(f"amp={amp!r} is only used on CUDA; training in float32", stacklevel=2)
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


# --------------------------------------------------------------------------- loss
def _autocast(device: torch.device, amp_dtype: torch.dtype | None) -> Any:
    """``torch.autocast`` to ``amp_dtype`` on ``device``, or a no-op context when it is None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype)


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


# --------------------------------------------------------------------------- data
def _item_seed(seed: int, pos: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, pos]).generate_state(1)[0])


@contextlib.contextmanager
def _seeded_rngs(seed: int) -> Iterator[None]:
    """Seed torch / NumPy / Python RNGs inside the block, restore the outer states after."""
    t, n, p = torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.manual_seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(t)
        np.random.set_state(n)
        random.setstate(p)


class _SeededItems(Dataset):
    """Wraps a map-style dataset: item ``(index, seed)`` is ``dataset[index]`` under ``seed``.

    Random crops / synthetic rain drawn from the global RNGs inside ``__getitem__`` thus depend
    only on the seed the sampler attaches, not on which worker or iterator produced them.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        with _seeded_rngs(seed):
            return split_pair(self.dataset[index])


class _StepBatchSampler(Sampler):
    """Batches of ``(index, seed)`` for steps ``start, start+1, ...``; a pure function of step.

    Global sample position ``pos = step * global_batch + rank * local_batch + j`` walks through
    epochs of permutations seeded by ``(seed, epoch)``.
    """

    def __init__(
        self, n: int, local_batch: int, rank: int, world: int, seed: int, start: int, stop: int
    ) -> None:
        self.n, self.local_batch, self.rank, self.world = n, local_batch, rank, world
        self.seed, self.start, self.stop = seed, start, stop
        self._epoch, self._perm = -1, np.arange(0)

    def _index(self, pos: int) -> int:
        epoch, offset = divmod(pos, self.n)
        if epoch != self._epoch:
            rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, epoch, 0x5D5E])
            self._perm, self._epoch = rng.permutation(self.n), epoch
        return int(self._perm[offset])

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        gb = self.local_batch * self.world
        for step in range(self.start, self.stop):
            base = step * gb + self.rank * self.local_batch
            yield [
                (self._index(base + j), _item_seed(self.seed, base + j))
                for j in range(self.local_batch)
            ]


def _is_map_dataset(data: Any) -> bool:
    return (
        not isinstance(data, IterableDataset)
        and hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, list | tuple)
    )


class _BatchSource:
    """Uniform ``next_batch()`` / ``state_dict()`` over datasets and iterables of batches."""

    def __init__(
        self,
        data: Any,
        config: TrainConfig,
        info: DistInfo,
        start_step: int,
        device: torch.device,
    ) -> None:
        self.device = device
        self.data = data
        self.is_dataset = _is_map_dataset(data)
        if self.is_dataset:
            n = len(data)
            if n == 0:
                raise ValueError(
                    "the training dataset is empty (check the folder layout: "
                    "sdsen data prepare / PairedImageFolder(root, layout=...))"
                )
            local = config.batch_size // info.world_size
            sampler = _StepBatchSampler(
                n, local, info.rank, info.world_size, config.seed, start_step, config.steps
            )
            gen = torch.Generator().manual_seed(config.seed)
            seed = config.seed
            loader = DataLoader(
                _SeededItems(data),
                batch_sampler=sampler,
                num_workers=config.num_workers,
                pin_memory=device.type == "cuda",
                generator=gen,
                worker_init_fn=functools.partial(_seed_worker, seed),  # picklable (spawn)
                persistent_workers=False,
            )
            self._it: Iterator[Any] | None = iter(loader)
        else:
            self._it = None  # created on first use, after load_state_dict

    def load_state_dict(self, state: Any) -> None:
        if self.is_dataset or state is None:
            return
        if hasattr(self.data, "load_state_dict"):
            self.data.load_state_dict(state)
        else:
            warnings.warn(
                f"{type(self.data).__name__} has no load_state_dict(): resumed data order is "
                "not the same as in an uninterrupted run",
                stacklevel=3,
            )

    def state_dict(self) -> Any:
        if self.is_dataset:
            return None  # the step alone determines the data
        if hasattr(self.data, "state_dict"):
            return self.data.state_dict()
        return None

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._it is None:
            self._it = iter(self.data)
        try:
            batch = next(self._it)
        except StopIteration:
            if self.is_dataset:
                raise
            self._it = iter(self.data)  # a finite iterable of batches: cycle
            try:
                batch = next(self._it)
            except StopIteration:
                raise ValueError("train_data yielded no batches") from None
        rainy, clean = split_pair(batch)
        if rainy.dim() != 4:
            raise ValueError(
                "train_data must be a map-style Dataset of (rainy, clean) pairs or an iterable "
                f"of batches (B, 3, H, W); got a tensor of shape {tuple(rainy.shape)}"
            )
        nb = self.device.type == "cuda"
        return rainy.to(self.device, non_blocking=nb), clean.to(self.device, non_blocking=nb)


def _seed_worker(seed: int, worker_id: int) -> None:
    # items are re-seeded per sample anyway; this only makes worker start-up deterministic
    s = _item_seed(seed, 2**40 + worker_id)
    torch.manual_seed(s)
    np.random.seed(s & 0xFFFFFFFF)
    random.seed(s)


# --------------------------------------------------------------------------- validation
def _iter_pairs(data: Any, limit: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    count = 0
    if _is_map_dataset(data):
        items: Iterable[Any] = (data[i] for i in range(len(data)))
    else:
        items = data
    for item in items:
        rainy, clean = split_pair(item)
        if rainy.dim() == 3:
            rainy, clean = rainy.unsqueeze(0), clean.unsqueeze(0)
        for i in range(rainy.shape[0]):
            if limit is not None and count >= limit:
                return
            yield rainy[i : i + 1], clean[i : i + 1]
            count += 1


@torch.no_grad()
def validate(
    model: nn.Module,
    data: Any,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    quantize: bool = True,
    amp_dtype: torch.dtype | None = None,
    stages: int | None = None,
) -> dict[str, Any]:
    """Mean PSNR / SSIM per stage over validation pairs, in both protocols.

    Parameters
    ----------
    model : torch.nn.Module
        Returns ``[R_1, ..., R_T]`` for ``(1, 3, H, W)`` inputs.
    data : Dataset or iterable
        ``(rainy, clean)`` pairs, each ``(3, H, W)`` (or batches ``(B, 3, H, W)``).
    device : torch.device, optional
        Defaults to the model's device.
    max_images : int, optional
        Stop after this many images.
    quantize : bool
        Score the 8-bit-truncated outputs (:func:`sdsen.metrics.quantize_8bit`).
    amp_dtype : torch.dtype, optional
        Autocast dtype on CUDA.
    stages : int, optional
        Score only the first ``stages`` stages (``model(x, stages=...)``); default all.

    Returns
    -------
    dict
        ``{"psnr": [T floats], "ssim": [...], "psnr_y": [...], "ssim_y": [...], "images": n}``.
    """
    net = unwrap_model(model)
    if device is None:
        device = next(net.parameters()).device
    device = torch.device(device)
    was_training = net.training
    net.eval()
    sums: dict[str, list[float]] | None = None
    n = 0
    try:
        for rainy, clean in _iter_pairs(data, max_images):
            rainy, clean = rainy.to(device), clean.to(device)
            with _autocast(device, amp_dtype):
                rains = net(rainy) if stages is None else net(rainy, stages=stages)
            if sums is None:
                sums = {k: [0.0] * len(rains) for k in ("psnr", "ssim", "psnr_y", "ssim_y")}
            for t, r in enumerate(rains):
                out = rainy - r.float()
                out = quantize_8bit(out) if quantize else out.clamp(0, 1)
                sums["psnr"][t] += float(psnr(out, clean, "rgb").sum())
                sums["ssim"][t] += float(ssim(out, clean, "rgb").sum())
                sums["psnr_y"][t] += float(psnr(out, clean, "y").sum())
                sums["ssim_y"][t] += float(ssim(out, clean, "y").sum())
            n += rainy.shape[0]
    finally:
        net.train(was_training)
    if sums is None:
        return {"psnr": [], "ssim": [], "psnr_y": [], "ssim_y": [], "images": 0}
    result: dict[str, Any] = {k: [v / n for v in vals] for k, vals in sums.items()}
    result["images"] = n
    return result


def _check_val_sizes(data: Any, max_images: int | None = None) -> None:
    """Refuse validation images smaller than the SSIM window, before any training step.

    Parameters
    ----------
    data : Dataset or iterable
        Validation pairs as :func:`validate` takes them (a one-shot iterator is not read).
    max_images : int, optional
        Check only the images :func:`validate` scores.

    Raises
    ------
    ValueError
        Naming the first image (for a :class:`~sdsen.data.PairedImageFolder`, the pair and
        its rainy file), its size and the fix.
    """
    if data is None or isinstance(data, Iterator):
        return
    for i, (rainy, _) in enumerate(_iter_pairs(data, max_images)):
        h, w = rainy.shape[-2:]
        if h < SSIM_WINDOW or w < SSIM_WINDOW:
            raise ValueError(
                f"validation {_pair_name(data, i)} is {w}x{h} (WxH), smaller than the "
                f"{SSIM_WINDOW}x{SSIM_WINDOW} window of SSIM. Fix: remove it from the validation "
                "data, or validate on other data (val_data; CLI: --val-data FOLDER or none)."
            )


def _pair_name(data: Any, index: int) -> str:
    """``pair 'name' (rainy file)`` for a folder of pairs, ``image N`` for other data."""
    names, pairs = getattr(data, "names", None), getattr(data, "pairs", None)
    if names is None or pairs is None:
        return f"image {index}"
    rainy = pairs[index][0]
    return f"pair {names[index]!r} ({rainy[0] if isinstance(rainy, tuple) else rainy})"


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
    _check_val_sizes(val_data, config.val_images)
    pre_device = resolve_device(config.device)
    info = init_distributed(pre_device.type)
    try:
        return _fit(model, train_data, val_data, config, run_dir, resume, progress, info,
                    max_seconds)
    finally:
        cleanup_distributed(info)


def _fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    progress: bool,
    info: DistInfo,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    device = resolve_device(config.device, info.local_rank)
    amp_dtype = resolve_amp(config.amp, device)
    if config.batch_size < info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} is smaller than the {info.world_size} processes"
        )
    if config.batch_size % info.world_size:
        warnings.warn(
            f"batch_size {config.batch_size} is not divisible by {info.world_size} processes; "
            f"each uses {config.batch_size // info.world_size}",
            stacklevel=3,
        )
    net = unwrap_model(model)
    _check_stage_schedule(config, net)
    net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=config.milestones, gamma=config.gamma
    )

    # ---------------------------------------------------------------- resume
    start_step = 0
    ckpt_path = run_dir / LATEST
    payload = None
    resumed_changes: dict[str, list[Any]] = {}
    if resume and ckpt_path.is_file():
        payload = load_checkpoint(ckpt_path, map_location="cpu")
        model_changes = _decoder_switch(payload, net)
        if model_changes:
            payload = equivariant_decoder_payload(payload)
        check_model_config(payload.get("model_config"), net, source=str(ckpt_path))
        net.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        load_scheduler_state(scheduler, payload["scheduler"])
        start_step = int(payload["step"])
        saved = payload.get("train_config") or {}
        # fields the checkpoint predates count at their defaults, so turning one on is recorded
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                    if f.default is not dataclasses.MISSING}
        saved_cfg = json.loads(json.dumps({**defaults, **saved} if saved else {}))
        new_cfg = json.loads(json.dumps(config.to_dict()))
        resumed_changes = {
            k: [saved_cfg[k], v] for k, v in new_cfg.items() if k in saved_cfg and saved_cfg[k] != v
        } | model_changes
        if resumed_changes.keys() & {"lr", "milestones", "gamma"}:
            _follow_schedule(optimizer, scheduler, config)
        changed = [k for k in _EXACTNESS_KEYS if k in resumed_changes]
        if changed and info.is_main:
            warnings.warn(
                f"resuming {ckpt_path} with changed {changed}: the continuation is not the "
                "same as an uninterrupted run",
                stacklevel=3,
            )
    elif not resume and ckpt_path.is_file() and info.is_main:
        warnings.warn(f"resume=False: {ckpt_path} will be overwritten", stacklevel=3)
    if payload is None and config.init_weights:
        init_cfg, init_state, init_source = initial_weights(config.init_weights)
        check_model_config(init_cfg, net, source=init_source)
        net.load_state_dict(init_state)
    # the schedule the run followed so far is the checkpoint's (a resume may change it)
    before = TrainConfig.from_dict(payload["train_config"]) if payload and payload.get(
        "train_config") else config
    if config.zero_links and not before.multi_stage_before(start_step):
        _zero_links(net)

    if info.is_main:
        write_run_files(run_dir, _run_config(config, net, info))
        for stale in run_dir.glob(".*.pt.*.tmp"):  # left by a process killed while saving
            stale.unlink(missing_ok=True)
    logger = RunLogger(run_dir, info.is_main, config.tensorboard, start_step)
    if payload is not None:
        # config.json holds the latest settings only; this line keeps what changed, and when
        logger.event("resume", start_step, changed=resumed_changes)
    source = _BatchSource(train_data, config, info, start_step, device)
    if payload is not None:
        source.load_state_dict(payload.get("data_state"))
        set_rng_state(payload["rng"])
    else:
        torch.manual_seed(config.seed + info.rank)
        np.random.seed((config.seed + info.rank) & 0xFFFFFFFF)
        random.seed(config.seed + info.rank)

    train_model: nn.Module = net
    if config.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]
    if info.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if payload is not None and payload.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(payload["scaler"])

    history: dict[str, Any] = {
        "step": [],
        "loss": [],
        "loss_stages": [],
        "lr": [],
        "val": [],
        "start_step": start_step,
        "final_step": start_step,
        "seconds": 0.0,
        "stopped_early": False,
        "signal": None,
        "config_changes": resumed_changes,
    }
    last_good = {"step": start_step if payload is not None else None}
    bench = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    pbar = tqdm(
        total=config.steps,
        initial=start_step,
        desc="train",
        dynamic_ncols=True,
        disable=not (progress and info.is_main),
    )
    t0 = time.perf_counter()
    interval: list[torch.Tensor] = []
    norms: list[torch.Tensor] = []  # global gradient norms before clipping, since the last log
    clip = config.grad_clip if config.grad_clip is not None else math.inf  # inf: measure only
    spike_norms: collections.deque[float] = collections.deque(
        (payload or {}).get("spike_norms", ()), maxlen=_SPIKE_WINDOW)
    skipped, skipped_run = 0, 0  # skipped updates since the last log, and in a row
    last_val = float("nan")
    step = start_step

    def last_good_text() -> str:
        if last_good["step"] is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {ckpt_path} (step {last_good['step']})"

    def weights_finite() -> bool:
        return bool(torch.stack([torch.isfinite(q).all() for q in net.parameters()]).all())

    def check_weights() -> None:
        """Stop before saving weights that are NaN/inf (the loss of their step was finite)."""
        if broadcast_flag(not weights_finite(), info, device):
            raise TrainingDivergedError(
                f"the weights became NaN/inf in step {step} (its loss was finite); stopped "
                f"without saving them. {last_good_text()}. Try a lower learning rate (--lr), "
                "gradient clipping (grad_clip, --grad-clip) or no mixed precision (amp='off', "
                "--amp off)."
            )

    def checkpoint(path: Path) -> None:
        save_checkpoint(
            path,
            net,
            optimizer,
            scheduler,
            step,
            config.to_dict(),
            data_state=source.state_dict(),
            rng=get_rng_state(),
            extra={**({"scaler": scaler.state_dict()} if scaler.is_enabled() else {}),
                   **({"spike_norms": list(spike_norms)} if config.skip_spikes else {})} or None,
        )

    stop = _StopRequest()  # SIGTERM / Ctrl-C: finish the step, save it, return
    try:
        train_model.train()
        while step < config.steps:
            rainy, clean = source.next_batch()
            n_stages = config.stages_at(step)
            if step > 0 and n_stages != config.stages_at(step - 1):
                spike_norms.clear()  # a new loss, a new gradient scale: learn its median anew
            with _autocast(device, amp_dtype):
                stages = train_model(rainy) if n_stages is None else train_model(
                    rainy, stages=n_stages)
            loss, parts = stage_loss(stages, rainy, clean)
            parts_t = torch.stack([p.detach() for p in parts])
            values = parts_t.cpu().tolist()  # the one host sync of the step
            loss_value = float(sum(values))
            bad = broadcast_flag(not math.isfinite(loss_value), info, device)
            if bad:
                raise TrainingDivergedError(
                    f"training loss became {loss_value} at step {step + 1}; stopped. "
                    f"{last_good_text()}. Try a lower learning rate (--lr), gradient clipping "
                    "(grad_clip, --grad-clip) or no mixed precision (amp='off', --amp off)."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # true gradients: logged norm, clipping threshold
            norms.append(torch.nn.utils.clip_grad_norm_(net.parameters(), clip).detach())
            norm = float(norms[-1]) if config.skip_spikes else None  # one host sync, if guarded
            if norm is not None and _is_spike(norm, spike_norms, config.skip_spikes):
                skipped += 1
                skipped_run += 1
                if skipped_run >= _SPIKE_MAX_RUN:
                    raise TrainingDivergedError(
                        f"{skipped_run} steps in a row up to step {step + 1} had gradient norms "
                        f"above {config.skip_spikes} x the recent median (skip_spikes); stopped. "
                        f"{last_good_text()}. Try a lower learning rate (--lr)."
                    )
                lr = optimizer.param_groups[0]["lr"]
            else:
                skipped_run = 0
                if norm is not None:
                    spike_norms.append(norm)
                with _warmed_up(optimizer, config.warmup_factor(step)):
                    scaler.step(optimizer)
                    lr = optimizer.param_groups[0]["lr"]
            scaler.update()
            with warnings.catch_warnings():
                # fp16: GradScaler skips the first steps while calibrating its scale
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
                scheduler.step()
            step += 1

            interval.append(parts_t)
            history["step"].append(step)
            history["loss"].append(loss_value)
            history["loss_stages"].append(values)
            history["lr"].append(lr)
            pbar.update(1)

            if step % config.log_every == 0 or step == config.steps:
                mean_parts = all_reduce_mean(_mean_stage_losses(interval), info).cpu()
                interval.clear()
                grad_norm_max = float(torch.stack(norms).max())
                norms.clear()
                if skipped:
                    logger.scalar("train/skipped_steps", skipped, step)
                total = float(mean_parts.sum())
                logger.event(
                    "train",
                    step,
                    loss=total,
                    loss_stages=[float(p) for p in mean_parts],
                    lr=lr,
                    grad_norm_max=grad_norm_max,
                    **({"skipped": skipped} if config.skip_spikes else {}),
                    stages=len(values),
                    elapsed_s=round(time.perf_counter() - t0, 3),
                )
                logger.scalar("train/loss", total, step)
                logger.scalar("train/grad_norm_max", grad_norm_max, step)
                for t, p in enumerate(mean_parts):
                    logger.scalar(f"train/loss_stage{t}", float(p), step)
                logger.scalar("train/lr", lr, step)
                skipped = 0
                pbar.set_postfix(loss=f"{total:.4g}", val_psnr=f"{last_val:.2f}", refresh=False)

            if info.is_main and config.log_images_every and step % config.log_images_every == 0:
                k = min(4, rainy.shape[0])
                derained = (rainy[:k] - stages[-1][:k].detach().float()).clamp(0, 1)
                grid = make_grid(torch.cat([rainy[:k], derained, clean[:k]]).float(), nrow=k)
                logger.image("train/rainy_derained_clean", grid, step)

            do_val = val_data is not None and (
                (config.val_every and step % config.val_every == 0) or step == config.steps
            )
            if do_val and info.is_main:
                res = validate(net, val_data, device, config.val_images, amp_dtype=amp_dtype,
                               stages=config.stages_at(step - 1))
                history["val"].append({"step": step, **res})
                if res["psnr"]:
                    last_val = res["psnr"][-1]
                    logger.event("val", step, **res)
                    for t in range(len(res["psnr"])):
                        for key in ("psnr", "ssim", "psnr_y", "ssim_y"):
                            logger.scalar(f"val/{key}_stage{t}", res[key][t], step)
                    pbar.set_postfix(loss=f"{loss_value:.4g}", val_psnr=f"{last_val:.2f}")

            save_latest = (config.ckpt_every and step % config.ckpt_every == 0) or (
                step == config.steps
            )
            keep = config.keep_every and step % config.keep_every == 0
            if save_latest or keep:
                check_weights()  # on every rank (the weights are the same on all)
            if info.is_main and save_latest:
                checkpoint(ckpt_path)
                last_good["step"] = step
            if info.is_main and keep:
                checkpoint(run_dir / f"step_{step}.pt")
            if step < config.steps and (max_seconds is not None or stop.signum is not None):
                late = max_seconds is not None and time.perf_counter() - t0 >= max_seconds
                if broadcast_flag(late or stop.signum is not None, info, device):
                    # every process stops at this step, with a checkpoint of it
                    if step != last_good["step"]:
                        check_weights()
                    if info.is_main and step != last_good["step"]:
                        checkpoint(ckpt_path)
                        last_good["step"] = step
                    history["stopped_early"] = True
                    history["signal"] = stop.signum
                    break
    finally:
        stop.restore()
        pbar.close()
        logger.close()
        torch.backends.cudnn.benchmark = bench
    history["final_step"] = step
    history["seconds"] = time.perf_counter() - t0
    if math.isnan(last_val):
        history["last_val_psnr"] = None
    else:
        history["last_val_psnr"] = last_val
    return history
