"""Training and evaluation datasets: synthetic rain on clean photos, patches of folder pairs.

Every item is a tuple ``(rainy, clean)`` of float32 tensors of shape ``(3, H, W)`` in ``[0, 1]``
(batches: ``(B, 3, H, W)``).

Determinism: item ``i`` draws all its randomness from a generator seeded by ``(seed, i)`` (a
:class:`numpy.random.SeedSequence`), never from global or per-worker RNG state, so the same
index gives the same sample whatever the number of DataLoader workers or the order of access.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from sdsen.data.builtin import builtin_clean_images, builtin_names
from sdsen.data.folders import PairedImageFolder
from sdsen.data.io import to_tensor
from sdsen.gconv import act_on_plane
from sdsen.rain import resolve_preset, sample_params, synthesize, synthesize_batch

__all__ = [
    "CenterCropPairs",
    "DeviceRainBatches",
    "RandomPatchDataset",
    "SyntheticRainDataset",
    "item_seed",
]

ImageList = Sequence[np.ndarray] | Sequence[torch.Tensor]
#: CLI spelling of ``patch_size`` in error messages.
_PATCH_SIZE_CLI = "CLI: `sdsen train --patch-size`, `sdsen data synth --size`"


def item_seed(*keys: int) -> int:
    """Hash integer keys (e.g. ``seed, index``) to a 63-bit seed, identically in every process.

    Examples
    --------
    >>> item_seed(0, 5) == item_seed(0, 5), item_seed(0, 5) == item_seed(0, 6)
    (True, False)
    """
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys])
    return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _as_hwc_list(images: ImageList | str, name: str = "images") -> tuple[list[np.ndarray], list]:
    """Normalise ``images`` (a split name or a list of arrays / tensors) to (H, W, 3) arrays."""
    if isinstance(images, str):
        return [np.asarray(im) for im in builtin_clean_images(images)], builtin_names(images)
    out = []
    for k, im in enumerate(images):
        if isinstance(im, torch.Tensor):
            if im.ndim != 3 or im.shape[0] != 3:
                raise ValueError(f"{name}[{k}]: expected a (3, H, W) tensor, got {tuple(im.shape)}")
            im = im.detach().cpu().permute(1, 2, 0).numpy()
        arr = np.asarray(im, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"{name}[{k}]: expected an (H, W, 3) array, got shape {arr.shape}")
        out.append(arr)
    if not out:
        raise ValueError(
            f"{name} is empty: a dataset needs at least one clean image. Fix: pass "
            "builtin_clean_images('train') or a split name such as 'train'."
        )
    return out, [f"image{k}" for k in range(len(out))]


def _synthesize(clean: torch.Tensor, params: Any):
    """:func:`sdsen.rain.synthesize` of ``clean`` with every field of ``params`` (RainParams)."""
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    return synthesize(clean, **fields)


class SyntheticRainDataset(Dataset):
    """Synthetic rain added on the fly to crops of clean photos.

    Parameters
    ----------
    images : str or sequence of arrays / tensors
        Clean photos, each ``(H, W, 3)`` array or ``(3, H, W)`` tensor in ``[0, 1]``; or a split
        name (``'train'``, ``'val'``, ``'test'``, ``'all'``) of :func:`builtin_clean_images`.
    patch_size : int or None, default 64
        Side of the square crops. ``None`` uses whole images (``crops='full'``).
    length : int or None, default 1000
        Number of items. ``None`` with ``crops='full'`` or ``'center'`` means one per image.
    preset : str or rain preset, default 'mixed'
        Name in :data:`sdsen.rain.PRESETS` or a preset object for
        :func:`sdsen.rain.sample_params`.
    angle_range : tuple of float or None
        ``(min, max)`` streak angle in degrees (``sdsen.rain`` convention), overriding the
        preset's range.
    seed : int, default 0
        Base seed; item ``i`` is a function of ``(seed, i)`` only.
    crops : {'random', 'center', 'full'}, default 'random'
        ``'random'``: a random crop of a random photo (photos drawn in proportion to their
        area). ``'center'`` / ``'full'``: item ``i`` uses photo ``i % n_images``, its centre crop
        or the whole image (evaluation sets).
    fixed_params : RainParams or None
        Use these rain parameters for every item instead of sampling them (for evaluation at a
        given angle). The rain seed is still varied per item: ``item_seed(params.seed, seed, i)``.

    Notes
    -----
    ``dataset[i]`` returns ``(rainy, clean)``, float32 tensors ``(3, p, p)`` (or the full image
    size). :meth:`sample` also returns the :class:`~sdsen.rain.RainSample` with its parameters,
    the photo name and the crop box ``(top, left, height, width)``.

    Synthesis works on small tensors: with ``num_workers=0`` on a small, busy CPU, several torch
    intra-op threads can make it about 10x slower than one (``benchmarks/README.md``); prefer
    DataLoader workers (one thread each) or :class:`DeviceRainBatches`.

    Examples
    --------
    >>> ds = SyntheticRainDataset("test", patch_size=32, length=4, preset="light", seed=1)
    >>> rainy, clean = ds[2]
    >>> rainy.shape, clean.dtype
    (torch.Size([3, 32, 32]), torch.float32)
    >>> bool((ds[2][0] == rainy).all())
    True
    """

    def __init__(
        self,
        images: ImageList | str,
        patch_size: int | None = 64,
        length: int | None = 1000,
        preset: Any = "mixed",
        angle_range: tuple[float, float] | None = None,
        seed: int = 0,
        crops: str = "random",
        fixed_params: Any = None,
    ) -> None:
        self.images, self.image_names = _as_hwc_list(images)
        if patch_size is None:
            crops = "full"
        if crops not in ("random", "center", "full"):
            raise ValueError(f"crops must be 'random', 'center' or 'full', got {crops!r}")
        if crops != "full":
            small = [
                n for n, im in zip(self.image_names, self.images) if min(im.shape[:2]) < patch_size
            ]
            if small:
                raise ValueError(
                    f"patch_size={patch_size} is larger than image(s) {small}. Fix: use a smaller "
                    f"patch_size ({_PATCH_SIZE_CLI}) or larger photos."
                )
        if length is None:
            if crops == "random":
                raise ValueError("length=None needs crops='center' or 'full'")
            length = len(self.images)
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.patch_size = patch_size
        self.length = int(length)
        self.preset = preset
        self.angle_range = angle_range
        self.seed = int(seed)
        self.crops = crops
        self.fixed_params = fixed_params
        areas = np.array(
            [
                max(
                    1, (im.shape[0] - (patch_size or 0) + 1) * (im.shape[1] - (patch_size or 0) + 1)
                )
                for im in self.images
            ],
            dtype=np.float64,
        )
        self._weights = areas / areas.sum()

    def __len__(self) -> int:
        return self.length

    def _crop_box(self, index: int, rng: np.random.Generator) -> tuple[int, tuple[int, ...]]:
        if self.crops == "random":
            k = int(rng.choice(len(self.images), p=self._weights))
            h, w = self.images[k].shape[:2]
            p = self.patch_size
            top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            return k, (top, left, p, p)
        k = index % len(self.images)
        h, w = self.images[k].shape[:2]
        if self.crops == "full":
            return k, (0, 0, h, w)
        p = self.patch_size
        return k, ((h - p) // 2, (w - p) // 2, p, p)

    def sample(self, index: int) -> dict[str, Any]:
        """Item ``index`` with everything needed to reproduce it.

        Returns
        -------
        dict
            ``rainy``, ``clean``, ``rain`` (tensors ``(3, H, W)``, ``rain = rainy - clean``),
            ``params`` (the RainParams used), ``source`` (photo name) and ``crop``
            (``(top, left, height, width)`` in the photo).
        """
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        rng = np.random.default_rng(item_seed(self.seed, index))
        k, (top, left, h, w) = self._crop_box(index, rng)
        clean = to_tensor(self.images[k][top : top + h, left : left + w])
        if self.fixed_params is not None:
            params = dataclasses.replace(
                self.fixed_params,
                seed=item_seed(self.fixed_params.seed or 0, self.seed, index) % (2**31),
            )
        else:
            params = sample_params(resolve_preset(self.preset), rng, angle_range=self.angle_range)
        out = _synthesize(clean, params)
        return {
            "rainy": out.rainy,
            "clean": out.clean,
            "rain": out.rain,
            "params": out.params,
            "source": self.image_names[k],
            "crop": (top, left, h, w),
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.sample(index)
        return s["rainy"], s["clean"]


class CenterCropPairs(Dataset):
    """The central ``size`` x ``size`` crop of each pair of a dataset (validation at less cost).

    Images smaller than ``size`` on a side keep that side whole.

    Parameters
    ----------
    dataset : Dataset
        Items ``(rainy, clean)``, each ``(3, H, W)`` tensors.
    size : int
        Side of the crop.

    Examples
    --------
    >>> pairs = [(torch.rand(3, 40, 50), torch.rand(3, 40, 50))]
    >>> [tuple(t.shape) for t in CenterCropPairs(pairs, 32)[0]]
    [(3, 32, 32), (3, 32, 32)]
    """

    def __init__(self, dataset: Any, size: int) -> None:
        if size < 1:
            raise ValueError(f"crop size must be >= 1, got {size}")
        self.dataset, self.size = dataset, int(size)
        self.names = getattr(dataset, "names", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rainy, clean = self.dataset[index]
        h, w = rainy.shape[-2:]
        ch, cw = min(h, self.size), min(w, self.size)
        top, left = (h - ch) // 2, (w - cw) // 2
        return (rainy[..., top : top + ch, left : left + cw],
                clean[..., top : top + ch, left : left + cw])


def _random_d4(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Apply an independent random rot90 / mirror to each square image of ``(B, C, p, p)``."""
    elements = rng.integers(0, 8, size=x.shape[0])
    return torch.stack(
        [act_on_plane(xi, (int(e) % 4, int(e) // 4)) for xi, e in zip(x, elements)]
    ).contiguous()


class DeviceRainBatches(IterableDataset):
    """Infinite stream of synthetic rain batches generated directly on a device.

    The clean photos are copied once to ``device`` (zero-padded into one
    ``(N, 3, H_max, W_max)`` tensor); crops are taken by indexing and rain is added by
    :func:`sdsen.rain.synthesize_batch`, so no DataLoader worker or host-to-device copy is
    involved (the fast path for GPU training).

    Parameters
    ----------
    images : str or sequence of arrays / tensors
        Clean photos (see :class:`SyntheticRainDataset`) or a built-in split name.
    patch_size : int, default 64
        Crop side ``p``.
    batch_size : int, default 16
        Batch size ``B``.
    preset : str or rain preset, default 'mixed'
    angle_range : tuple of float or None
        Streak angle range in degrees, overriding the preset's.
    device : str or torch.device, default 'cpu'
    seed : int, default 0
    augment : bool, default False
        Move each clean crop by a random element of D4 (rot90 and mirror) BEFORE the rain is
        added, so the streak angles keep the preset's distribution while a few photos give
        eight times as many backgrounds.
    prefetch : bool, default False
        While iterating, make batch ``k + 1`` in a background thread as soon as batch ``k`` is
        handed out, so its per-sample CPU draws overlap the caller's training step (worth it
        on a GPU, where they are a sizeable share of a step; on a CPU both compete for the
        same cores). The batches and :attr:`step` are the same as without it.

    Notes
    -----
    Batch ``k`` (0-based step) is a function of ``(seed, k)`` only, for a given device type, so
    :meth:`batch` gives random access, and :meth:`state_dict` / :meth:`load_state_dict` (or
    :meth:`skip`) resume a training run exactly. Iterating yields ``(rainy, clean)``, each
    ``(B, 3, p, p)`` float32 on ``device``, and advances :attr:`step` (the batches handed
    out, not those prefetched).

    Examples
    --------
    >>> stream = DeviceRainBatches("test", patch_size=32, batch_size=2, preset="light", seed=0)
    >>> rainy, clean = next(iter(stream))
    >>> rainy.shape, stream.step
    (torch.Size([2, 3, 32, 32]), 1)
    >>> bool((stream.batch(0)[0] == rainy).all())
    True
    """

    def __init__(
        self,
        images: ImageList | str,
        patch_size: int = 64,
        batch_size: int = 16,
        preset: Any = "mixed",
        angle_range: tuple[float, float] | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        augment: bool = False,
        prefetch: bool = False,
    ) -> None:
        arrays, self.image_names = _as_hwc_list(images)
        self.augment = bool(augment)
        self.prefetch = bool(prefetch)
        small = [n for n, im in zip(self.image_names, arrays) if min(im.shape[:2]) < patch_size]
        if small:
            raise ValueError(
                f"patch_size={patch_size} is larger than image(s) {small}. Fix: use a smaller "
                f"patch_size ({_PATCH_SIZE_CLI}) or larger photos."
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.patch_size = int(patch_size)
        self.batch_size = int(batch_size)
        self.preset = preset
        self.angle_range = angle_range
        self.seed = int(seed)
        self.step = 0
        hmax = max(im.shape[0] for im in arrays)
        wmax = max(im.shape[1] for im in arrays)
        stack = torch.zeros(len(arrays), 3, hmax, wmax)
        for k, im in enumerate(arrays):
            stack[k, :, : im.shape[0], : im.shape[1]] = to_tensor(im)
        self._stack = stack.to(self.device)
        sizes = np.array([im.shape[:2] for im in arrays], dtype=np.float64)
        areas = (sizes[:, 0] - patch_size + 1) * (sizes[:, 1] - patch_size + 1)
        self._weights = torch.tensor(areas / areas.sum(), dtype=torch.float32, device=self.device)
        self._max_top = torch.tensor(sizes[:, 0] - patch_size + 1, device=self.device)
        self._max_left = torch.tensor(sizes[:, 1] - patch_size + 1, device=self.device)
        self._ar = torch.arange(patch_size, device=self.device)

    def _generator(self, step: int) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(item_seed(self.seed, step))
        return g

    def batch(self, step: int, return_info: bool = False) -> tuple[Any, ...]:
        """Batch number ``step``, without changing :attr:`step`.

        Parameters
        ----------
        step : int
            Batch index (0-based).
        return_info : bool, default False
            Also return a dict with, per sample, ``image`` (photo index), ``top``, ``left``
            (crop corner, tensors ``(B,)``) and ``params`` (list of RainParams).

        Returns
        -------
        rainy, clean : torch.Tensor
            Each ``(B, 3, p, p)`` float32 on :attr:`device` (then ``info`` if asked).
        """
        g = self._generator(step)
        b = self.batch_size
        k = torch.multinomial(self._weights, b, replacement=True, generator=g)
        u = torch.rand(2, b, generator=g, device=self.device, dtype=torch.float64)
        top = (u[0] * self._max_top[k]).long().clamp_max(self._max_top[k].long() - 1)
        left = (u[1] * self._max_left[k]).long().clamp_max(self._max_left[k].long() - 1)
        rows = (top[:, None] + self._ar)[:, :, None]  # (B, p, 1)
        cols = (left[:, None] + self._ar)[:, None, :]  # (B, 1, p)
        clean = self._stack.permute(0, 2, 3, 1)[k[:, None, None], rows, cols]  # (B, p, p, 3)
        clean = clean.permute(0, 3, 1, 2).contiguous()
        if self.augment:
            clean = _random_d4(clean, np.random.default_rng(item_seed(self.seed, step, 2)))
        rng = np.random.default_rng(item_seed(self.seed, step, 1))
        preset = resolve_preset(self.preset)
        params = [sample_params(preset, rng, angle_range=self.angle_range) for _ in range(b)]
        rainy, clean, _ = synthesize_batch(clean, params, g)
        if return_info:
            return rainy, clean, {"image": k, "top": top, "left": left, "params": params}
        return rainy, clean

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if torch.utils.data.get_worker_info() is not None:
            raise RuntimeError(
                "DeviceRainBatches generates whole batches itself and every DataLoader worker "
                "would repeat the same stream. Fix: iterate it directly (or use "
                "DataLoader(stream, batch_size=None, num_workers=0))."
            )
        if not self.prefetch:
            while True:
                out = self.batch(self.step)
                self.step += 1
                yield out
        else:
            yield from self._prefetched()

    def _prefetched(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate with batch ``step + 1`` made in a background thread (``prefetch=True``)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdsen-prefetch") as pool:
            ahead_step, ahead = self.step, pool.submit(self.batch, self.step)
            while True:
                if ahead_step != self.step:  # skip() / load_state_dict() while iterating
                    ahead_step, ahead = self.step, pool.submit(self.batch, self.step)
                out = ahead.result()
                self.step += 1
                ahead_step, ahead = self.step, pool.submit(self.batch, self.step)
                yield out

    def skip(self, n: int) -> None:
        """Advance the stream by ``n`` batches without generating them."""
        self.step += int(n)

    def state_dict(self) -> dict[str, int]:
        """``{'step': ..., 'seed': ...}``: everything needed to resume the stream."""
        return {"step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume from :meth:`state_dict` (the seed must match)."""
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"state was saved with seed {state['seed']} but this stream has seed {self.seed}. "
                "Fix: build DeviceRainBatches with the checkpoint's seed."
            )
        self.step = int(state["step"])


class RandomPatchDataset(Dataset):
    """Random square patches of the pairs of a :class:`PairedImageFolder` (training on folders).

    Parameters
    ----------
    folder_dataset : PairedImageFolder
        Source pairs (kept as :attr:`folder`).
    patch_size : int, default 64
        Side ``p`` of the patches.
    length : int or None
        Number of items per epoch; ``None`` means one patch per pair.
    augment : bool, default False
        Random flips and 90-degree rotations, the same for both images of a pair (off by default,
        as in the official SDSEN code).
    seed : int, default 0
        Item ``i`` depends only on ``(seed, i)``.
    cache : bool, default False
        Keep decoded pairs in memory (per process); worth it for small folders.
    synthetic_mix : float, default 0
        Share of patches whose rain is drawn by :func:`sdsen.rain.synthesize` over the pair's
        clean patch (parameters from ``rain_preset`` and ``rain_angles``) instead of the
        pair's own rain: more rain patterns and angles over the same real scenes.
    clean_mix : float, default 0
        Share of patches with no rain at all (``rainy`` is the clean patch).
    rain_preset : str or rain preset, default 'mixed'
        Preset of the synthetic rain (:data:`sdsen.rain.PRESETS`).
    rain_angles : tuple of float or None
        ``(low, high)`` streak angles of the synthetic rain in degrees (None: the preset's).

    Warns
    -----
    UserWarning
        If the pairs are stored as JPEG/WebP: recompression changes the rain layer ``R = O - B``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sdsen.data.io import write_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(root / "rain" / "a.png", np.full((40, 50, 3), 0.8, np.float32))
    >>> write_image(root / "gt" / "a.png", np.full((40, 50, 3), 0.2, np.float32))
    >>> ds = RandomPatchDataset(PairedImageFolder(root), patch_size=16, length=3)
    >>> [tuple(t.shape) for t in ds[0]]
    [(3, 16, 16), (3, 16, 16)]
    >>> rainy, clean = RandomPatchDataset(PairedImageFolder(root), 16, clean_mix=1.0)[0]
    >>> bool((rainy == clean).all())
    True
    """

    def __init__(
        self,
        folder_dataset: PairedImageFolder,
        patch_size: int = 64,
        length: int | None = None,
        augment: bool = False,
        seed: int = 0,
        cache: bool = False,
        synthetic_mix: float = 0.0,
        clean_mix: float = 0.0,
        rain_preset: Any = "mixed",
        rain_angles: tuple[float, float] | None = None,
    ) -> None:
        folder = folder_dataset
        if len(folder) == 0:
            raise ValueError(f"{folder!r} has no pairs; refusing to build an empty dataset")
        if folder.is_lossy:
            warnings.warn(
                f"training pairs in {str(folder.root)!r} are stored as JPEG/WebP: lossy "
                "recompression changes the rain layer R = O - B. Prefer PNG (lossless).",
                UserWarning,
                stacklevel=2,
            )
        self.folder = folder
        self.patch_size = int(patch_size)
        self.length = len(folder) if length is None else int(length)
        if self.length <= 0:
            raise ValueError(f"length must be positive, got {self.length}")
        if not (0 <= synthetic_mix <= 1 and 0 <= clean_mix <= 1 and synthetic_mix + clean_mix <= 1):
            raise ValueError(
                f"synthetic_mix ({synthetic_mix}) and clean_mix ({clean_mix}) must be shares in "
                "[0, 1] adding up to at most 1"
            )
        self.augment = augment
        self.seed = int(seed)
        self.cache = cache
        self.synthetic_mix = float(synthetic_mix)
        self.clean_mix = float(clean_mix)
        self.rain_preset = resolve_preset(rain_preset)
        self.rain_angles = None if rain_angles is None else tuple(float(a) for a in rain_angles)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.length

    def _pair(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        if j in self._cache:
            return self._cache[j]
        pair = self.folder.load_pair(j)
        if self.cache:
            self._cache[j] = pair
        return pair

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        rng = np.random.default_rng(item_seed(self.seed, index))
        j = int(rng.integers(len(self.folder)))
        rainy, clean = self._pair(j)
        h, w = rainy.shape[:2]
        p = self.patch_size
        if h < p or w < p:
            raise ValueError(
                f"pair {self.folder.names[j]!r} ({self.folder.pairs[j][0]}) is {w}x{h} (WxH), "
                f"smaller than patch_size={p}. Fix: use a smaller patch_size (CLI: `sdsen train "
                "--patch-size`) or drop the pair."
            )
        top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        rainy = rainy[top : top + p, left : left + p]
        clean = clean[top : top + p, left : left + p]
        if self.augment:
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            rainy, clean = np.rot90(rainy, k), np.rot90(clean, k)
            if flip:
                rainy, clean = rainy[:, ::-1], clean[:, ::-1]
        clean_t = to_tensor(clean)
        if self.synthetic_mix or self.clean_mix:  # no extra draw otherwise: old runs unchanged
            u = rng.random()
            if u < self.clean_mix:
                return clean_t.clone(), clean_t
            if u < self.clean_mix + self.synthetic_mix:
                params = sample_params(self.rain_preset, rng, angle_range=self.rain_angles)
                return _synthesize(clean_t, params).rainy, clean_t
        return to_tensor(rainy), clean_t
