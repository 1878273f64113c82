"""Data (``sdsen.data``): image I/O, built-in photos, paired folders, datasets, dataset writers.

Conventions: a pair is ``(O rainy, B clean)``, float32 RGB in ``[0, 1]``,
tensors of shape ``(3, H, W)`` (numpy arrays ``(H, W, 3)``); the rain layer is ``R = O - B``.

- :mod:`~sdsen.data.io`: :func:`read_image`, :func:`write_image`, :func:`to_tensor`,
  :func:`to_numpy`, :func:`list_images` (image files of a folder, hidden files skipped).
- :mod:`~sdsen.data.builtin`: :func:`builtin_clean_images`, :func:`builtin_names` (offline photos
  shipped inside scikit-image, split by image).
- :mod:`~sdsen.data.folders`: :class:`PairedImageFolder` (canonical, Rain100H/L, Rain1400/DDN,
  Rain12, RESCAN/SDSEN and Rain800 side-by-side layouts).
- :mod:`~sdsen.data.datasets`: :class:`SyntheticRainDataset`, :class:`DeviceRainBatches`,
  :class:`RandomPatchDataset`, :class:`CenterCropPairs`.
- :mod:`~sdsen.data.prepare`: :func:`synth_dataset`, :func:`prepare`.
"""

from sdsen.data.builtin import BUILTIN_PHOTOS, BuiltinPhoto, builtin_clean_images, builtin_names
from sdsen.data.datasets import (
    CenterCropPairs,
    DeviceRainBatches,
    RandomPatchDataset,
    SyntheticRainDataset,
    item_seed,
)
from sdsen.data.folders import (
    LAYOUTS,
    PairedImageFolder,
    detect_layout,
    natural_key,
    read_name_list,
    split_by_names,
)
from sdsen.data.io import (
    IMAGE_EXTENSIONS,
    LOSSY_EXTENSIONS,
    is_image_file,
    list_images,
    read_image,
    to_numpy,
    to_tensor,
    write_image,
)
from sdsen.data.prepare import prepare, synth_dataset

__all__ = [
    "BUILTIN_PHOTOS",
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "LOSSY_EXTENSIONS",
    "BuiltinPhoto",
    "CenterCropPairs",
    "DeviceRainBatches",
    "PairedImageFolder",
    "RandomPatchDataset",
    "SyntheticRainDataset",
    "builtin_clean_images",
    "builtin_names",
    "detect_layout",
    "is_image_file",
    "item_seed",
    "list_images",
    "natural_key",
    "prepare",
    "read_image",
    "read_name_list",
    "split_by_names",
    "synth_dataset",
    "to_numpy",
    "to_tensor",
    "write_image",
]
