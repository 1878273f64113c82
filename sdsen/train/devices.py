"""Where training runs: the device, mixed precision, and the autocast context both use."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

__all__ = ["autocast", "resolve_amp", "resolve_device"]


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


def autocast(device: torch.device, amp_dtype: torch.dtype | None) -> Any:
    """``torch.autocast`` to ``amp_dtype`` on ``device``, or a no-op context when it is None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype)
