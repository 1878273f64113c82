"""One pair of images, whatever container it comes in: ``(rainy, clean)`` tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["split_pair"]


def split_pair(item: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rainy, clean)`` tensors from a tuple / list, a dict or an object with attributes.

    Numpy images ``(H, W, 3)`` become float ``(3, H, W)`` tensors; tensors pass unchanged, so
    batches ``(B, 3, H, W)`` do too.

    Examples
    --------
    >>> rainy, clean = split_pair({"rainy": np.ones((4, 5, 3)), "clean": torch.zeros(3, 4, 5)})
    >>> rainy.shape, clean.shape
    (torch.Size([3, 4, 5]), torch.Size([3, 4, 5]))
    """
    if isinstance(item, dict):
        rainy, clean = item["rainy"], item["clean"]
    elif isinstance(item, tuple | list):
        rainy, clean = item[0], item[1]
    elif hasattr(item, "rainy") and hasattr(item, "clean"):
        rainy, clean = item.rainy, item.clean
    else:
        raise TypeError(f"expected (rainy, clean) pairs, got {type(item).__name__}")
    return _as_tensor(rainy), _as_tensor(clean)


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x)).float()
        if t.dim() == 3 and t.shape[-1] == 3 and t.shape[0] != 3:
            t = t.permute(2, 0, 1)
        return t
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected an image tensor, got {type(x).__name__}")
    return x
