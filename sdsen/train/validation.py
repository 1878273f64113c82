"""Validation during training: mean PSNR / SSIM per stage, in both protocols."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ..data.pairs import split_pair
from ..metrics import SSIM_WINDOW, score_image
from ..models.utils import eval_mode, unwrap_model
from .devices import autocast
from .sampling import is_map_dataset

__all__ = ["check_val_sizes", "validate"]

#: validate's keys -> the keys of a :func:`~sdsen.metrics.score_image` row
_ROW_KEYS = {"psnr": "psnr_rgb", "ssim": "ssim_rgb", "psnr_y": "psnr_y", "ssim_y": "ssim_y"}


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
    sums: dict[str, list[float]] | None = None
    n = 0
    with eval_mode(net):
        for rainy, clean in iter_pairs(data, max_images):
            rainy, clean = rainy.to(device), clean.to(device)
            with autocast(device, amp_dtype):
                rains = net(rainy) if stages is None else net(rainy, stages=stages)
            if sums is None:
                sums = {k: [0.0] * len(rains) for k in _ROW_KEYS}
            for t, r in enumerate(rains):  # one image: (1, 3, H, W)
                row = score_image(rainy - r.float(), clean, quantize=quantize)
                for key in sums:
                    sums[key][t] += row[_ROW_KEYS[key]]
            n += 1
    if sums is None:
        return {"psnr": [], "ssim": [], "psnr_y": [], "ssim_y": [], "images": 0}
    result: dict[str, Any] = {k: [v / n for v in vals] for k, vals in sums.items()}
    result["images"] = n
    return result


def check_val_sizes(data: Any, max_images: int | None = None) -> None:
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
    for i, (rainy, _) in enumerate(iter_pairs(data, max_images)):
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


def iter_pairs(data: Any, limit: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Single pairs ``(rainy, clean)``, each ``(1, 3, H, W)``, from a dataset or its batches.

    ``data`` is a map-style dataset of pairs or an iterable of pairs or batches of pairs;
    at most ``limit`` pairs are yielded (all with ``None``).

    >>> pairs = [(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4))]
    >>> [tuple(r.shape) for r, _ in iter_pairs(pairs, 3)]
    [(1, 3, 4, 4), (1, 3, 4, 4)]
    """
    count = 0
    if is_map_dataset(data):
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
