"""Tiled inference: derain an image of any size in bounded memory.

The image is cut into overlapping ``tile x tile`` windows; each runs through the model alone and
the rain layers are blended with smooth weights that vanish near the tile borders, where a tile
lacks context. Two things make a tile differ from the whole image:

- the receptive field: ``R_T`` at a pixel depends on the ``(2 r + 1)^2`` window around it,
  ``r = 12 T`` for the official kernel 5 and 4 blocks (see
  :func:`~sdsen.models.receptive_field`); it chains through the stages because
  ``x_t = O - R_{t-1}`` feeds the next one. The default overlap is that radius, rounded up to
  a multiple of 8. The blend gives weight 0 to the outer ``overlap / 4`` pixels of each
  interior tile side, ramps (raised cosine) over the next ``overlap / 2`` and trusts the rest.
- the squeeze-and-excitation gates, which average over the whole image. With
  ``se_stats='image'`` (default) a first pass gathers the image-wide averages of every stage
  tile by tile, and a second pass runs every tile with those gates (stage 1's averages exact,
  later ones up to a second-order difference). ``'tile'`` uses each tile's own averages (one
  pass, half the time).

How close tiled and whole-image outputs are, measured: ``benchmarks/README.md``,
*Tiling accuracy*.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.io import to_numpy, to_tensor
from .networks import _DerainNet, check_image_batch
from .summary import receptive_field
from .utils import eval_mode

__all__ = [
    "RANGE_TOLERANCE",
    "blend_window",
    "check_unit_range",
    "default_overlap",
    "derain_image",
    "tile_starts",
]


def default_overlap(model: _DerainNet, stages: int | None = None) -> int:
    """The receptive-field radius after ``stages`` stages (default all), rounded up to a multiple
    of 8 (official SDSEN: 96; its first two stages: 24)."""
    fields = receptive_field(model.config)
    return int(math.ceil(fields[(stages or len(fields)) - 1] / 8) * 8)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping by ≥ ``overlap``.

    Examples
    --------
    >>> tile_starts(1024, 256, 96)
    [0, 154, 307, 461, 614, 768]
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    n = math.ceil((length - overlap) / stride)
    n = max(n, 2)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def blend_window(
    size: int, overlap: int, left: bool, right: bool, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """1-D blending weights ``(size,)``: 0 on the outer ``overlap // 4`` pixels of an interior
    side, a raised-cosine ramp over the next ``overlap // 2``, 1 inside. ``left`` / ``right``
    say whether that side borders another tile (image borders keep weight 1)."""
    w = torch.ones(size, dtype=torch.float64)
    m, ramp = overlap // 4, max(overlap - 2 * (overlap // 4), 1)
    d = torch.arange(size, dtype=torch.float64)
    r = ((d - m + 0.5) / ramp).clamp(0, 1)
    ramp_up = torch.where(d < m, torch.zeros_like(d), 0.5 - 0.5 * torch.cos(math.pi * r))
    if left:
        w = w * ramp_up
    if right:
        w = w * ramp_up.flip(0)
    return w.to(dtype)


def _to_chw(image: Any) -> tuple[torch.Tensor, str, Any]:
    """Image -> float (3, H, W) tensor, plus how to convert back."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected a numpy RGB image (H, W, 3), got shape {image.shape}")
        if image.dtype == np.uint8:
            return to_tensor(image.astype(np.float32) / 255.0), "numpy", image.dtype
        if np.issubdtype(image.dtype, np.floating):
            return to_tensor(image), "numpy", image.dtype
        raise ValueError(f"numpy images must be uint8 or float in [0, 1], got dtype {image.dtype}")
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            hint = (
                " (a numpy-style (H, W, 3) tensor? permute(2, 0, 1))"
                if image.dim() == 3 and image.shape[-1] == 3
                else ""
            )
            raise ValueError(f"expected a tensor image (3, H, W), got {tuple(image.shape)}{hint}")
        if image.dtype == torch.uint8:
            return image.float() / 255.0, "torch", torch.uint8
        if not image.is_floating_point():
            raise ValueError(f"tensor images must be uint8 or float, got dtype {image.dtype}")
        return image, "torch", image.dtype
    raise ValueError(
        f"expected a (3, H, W) torch.Tensor or an (H, W, 3) numpy array, got {type(image)}"
    )


#: How far outside [0, 1] a float image may stray (rounding of a conversion), in its units.
RANGE_TOLERANCE = 1e-3


def check_unit_range(x: torch.Tensor) -> None:
    """Raise a ``ValueError`` unless the float image ``x`` lies in [0, 1] up to rounding.

    The message says what range was found and the likely cause: 8-bit or 16-bit levels kept
    as floats, or a normalised (centred) image.

    Examples
    --------
    >>> check_unit_range(torch.full((3, 2, 2), 255.0))
    Traceback (most recent call last):
    ...
    ValueError: expected an image with values in [0, 1], got range [255, 255]: 8-bit levels stored as floats? Divide by 255.
    """
    if x.numel() == 0:
        raise ValueError(f"got an empty image of shape {tuple(x.shape)}: nothing to derain")
    if torch.isnan(x).any():
        raise ValueError("the image contains NaN values; clean or mask them before deraining")
    lo, hi = (float(v) for v in torch.aminmax(x))
    if lo >= -RANGE_TOLERANCE and hi <= 1 + RANGE_TOLERANCE:
        return
    if lo < -RANGE_TOLERANCE:
        cause = ("negative values: a normalised image (e.g. x - 0.5 or (x - mean) / std)? Undo "
                 "the normalisation first.")
    elif hi <= 255 + RANGE_TOLERANCE:
        cause = "8-bit levels stored as floats? Divide by 255."
    elif hi <= 65535 + RANGE_TOLERANCE:
        cause = "16-bit levels stored as floats? Divide by 65535."
    else:
        cause = "rescale it to [0, 1]."
    raise ValueError(f"expected an image with values in [0, 1], got range [{lo:.3g}, {hi:.3g}]: "
                     f"{cause}")


def _tile_shape(h: int, w: int, tile: int) -> tuple[int, int]:
    """Tile height and width: ``tile x tile``, or, for an image thinner than ``tile``, one
    full-height (or full-width) tile of about the same area."""
    th, tw = min(tile, h), min(tile, w)
    if th < tile:
        tw = min(w, max(tile, tile * tile // th))
    elif tw < tile:
        th = min(h, max(tile, tile * tile // tw))
    return th, tw


def _fit_tile(length: int, tile: int, overlap: int) -> int:
    """The smallest tile side that covers ``length`` with as many tiles as ``tile`` needs
    (:func:`tile_starts`), so that neighbours overlap by about ``overlap``, not more.

    >>> _fit_tile(2048, 512, 24), _fit_tile(300, 512, 24), _fit_tile(1000, 512, 96)
    (429, 300, 398)
    """
    if tile >= length:
        return length
    n = max(2, math.ceil((length - overlap) / (tile - overlap)))
    return min(tile, math.ceil((length - overlap) / n) + overlap)


def _from_chw(x: torch.Tensor, kind: str, dtype: Any) -> Any:
    x = x.clamp(0, 1)
    if kind == "numpy":
        arr = to_numpy(x)
        if dtype == np.uint8:
            return np.round(arr * 255.0).astype(np.uint8)
        return arr.astype(dtype)
    if dtype == torch.uint8:
        return (x * 255.0).round().to(torch.uint8)
    return x.to(dtype)


def derain_image(
    model: _DerainNet,
    image: Any,
    tile: int = 512,
    overlap: int | None = None,
    device: torch.device | str | None = None,
    stage: int | None = None,
    return_all: bool = False,
    se_stats: str = "image",
    engine: Any = None,
    progress: bool = False,
) -> Any:
    """Derain one image of any size, tile by tile, in bounded memory.

    Only the stages up to the one returned are run: later stages do not change earlier ones.

    Parameters
    ----------
    model
        A :class:`~sdsen.models.SDSEN` / :class:`~sdsen.models.DSEN`; run in eval mode under
        ``torch.inference_mode`` (its training mode is restored afterwards).
    image
        RGB image: a ``(3, H, W)`` tensor (float in [0, 1] or uint8) or an ``(H, W, 3)`` numpy
        array (float in [0, 1] or uint8). Float values outside [0, 1] by more than
        :data:`RANGE_TOLERANCE` are refused (:func:`check_unit_range`).
    tile
        Largest tile side in pixels (memory grows with ``tile ** 2``, not with the image; 512
        needs about 0.5 GB for the official SDSEN). The tiles are then shrunk to the smallest
        size that covers the image with as many of them, so neighbours overlap by ``overlap``,
        not more. An image thinner than ``tile`` gets tiles of its full height (or width) and
        about the same area.
    overlap
        Overlap of neighbouring tiles; default :func:`default_overlap` (the receptive-field
        radius of the stages run, 96 for all eight of the official SDSEN). Must be < ``tile``.
    device
        Where the tiles run; default the model's device. Results gather on the CPU.
    stage
        Which stage's clean estimate ``O - R_t`` to return (default the last).
    return_all
        Return a list with the clean estimate of every stage instead.
    se_stats
        ``'image'``: SE gates from image-wide statistics (two passes); ``'tile'``: per tile.
    engine
        What runs the tiles: an engine from :func:`sdsen.models.engines.make_engine` (ONNX
        Runtime, OpenVINO: faster on a CPU, outputs within rounding), or None for ``model``.
    progress
        Show a progress bar over the tile passes when there is more than one tile.

    Returns
    -------
    Same type, layout and dtype as ``image``, clamped to [0, 1] (uint8 in, uint8 out: rounded
    ``255 x``); a list of them with ``return_all``.

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> model = SDSEN(channels=2, stages=2, blocks=1)
    >>> out = derain_image(model, np.zeros((40, 30, 3), np.uint8), tile=24, overlap=8)
    >>> out.shape, out.dtype
    ((40, 30, 3), dtype('uint8'))
    """
    if se_stats not in ("image", "tile"):
        raise ValueError(f"se_stats must be 'image' or 'tile', got {se_stats!r}")
    x, kind, dtype = _to_chw(image)
    check_unit_range(x)  # before the model's own, looser check
    check_image_batch(x[None])
    _, h, w = x.shape
    n_stages = model.config.stages
    if stage is not None and not -n_stages <= stage < n_stages:
        raise ValueError(f"stage must be in [{-n_stages}, {n_stages}), got {stage}")
    keep = list(range(n_stages)) if return_all else [n_stages - 1 if stage is None else stage]
    keep = [k % n_stages for k in keep]
    n_run = max(keep) + 1  # later stages do not change earlier ones
    overlap = default_overlap(model, n_run) if overlap is None else int(overlap)
    tile = int(tile)
    if not 0 <= overlap < tile:
        raise ValueError(
            f"tile overlap must be at least 0 and smaller than the tile, got overlap={overlap}, "
            f"tile={tile}; pass a larger tile or a smaller overlap (CLI: --tile, --overlap)"
        )
    param = next(model.parameters())
    device = param.device if device is None else torch.device(device)
    cdtype = param.dtype
    x = x.to(cdtype)
    th, tw = _tile_shape(h, w, tile)
    th, tw = _fit_tile(h, th, overlap), _fit_tile(w, tw, overlap)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    windows = []
    for y0 in ys:
        wy = blend_window(th, overlap, y0 > 0, y0 + th < h, cdtype)
        for x0 in xs:
            wx = blend_window(tw, overlap, x0 > 0, x0 + tw < w, cdtype)
            windows.append((y0, x0, wy[:, None] * wx[None, :]))
    norm = torch.zeros(h, w, dtype=cdtype)
    for y0, x0, wt in windows:
        norm[y0 : y0 + th, x0 : x0 + tw] += wt

    two_pass = model.has_image_stats and se_stats == "image" and len(windows) > 1
    runner = model if engine is None else engine
    bar = tqdm(total=len(windows) * (1 + two_pass), desc="tiles", unit="tile", leave=False,
               disable=not progress or len(windows) < 2)
    try:
        with eval_mode(model), torch.inference_mode():
            gates = None
            if two_pass:
                sums: list[torch.Tensor] = [0] * n_run  # type: ignore[list-item]
                counts = [0.0] * n_run
                for y0, x0, wt in windows:
                    patch = x[None, :, y0 : y0 + th, x0 : x0 + tw].to(device)
                    sw = (wt / norm[y0 : y0 + th, x0 : x0 + tw]).to(device)
                    _, stats = runner.run_stages(patch, stat_weight=sw, stages=n_run)
                    for t, (s, c) in enumerate(stats):
                        sums[t] = sums[t] + s.to(device)
                        counts[t] += float(c)
                    bar.update()
                gates = model.gates_from_means([sums[t] / counts[t] for t in range(n_run)])
            acc = {k: torch.zeros(3, h, w, dtype=cdtype) for k in keep}
            for y0, x0, wt in windows:
                patch = x[None, :, y0 : y0 + th, x0 : x0 + tw].to(device)
                rains, _ = runner.run_stages(patch, gates=gates, stages=n_run)
                for k in keep:
                    acc[k][:, y0 : y0 + th, x0 : x0 + tw] += rains[k][0].to("cpu", cdtype) * wt
                bar.update()
            outs = [_from_chw(x - acc[k] / norm, kind, dtype) for k in keep]
    finally:
        bar.close()
    return outs if return_all else outs[0]
