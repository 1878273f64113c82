"""Files that must never be half-written, and payloads that load without running code.

The ground floor of the package (no other ``sdsen`` import): atomic writes of text and of
``torch.save`` payloads, ``weights_only`` reading with one-line errors, and the format tags of
the two payloads sdsen writes (training checkpoints, shipped weights).
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "WEIGHTS_FORMAT",
    "apply_umask",
    "atomic_torch_save",
    "read_payload",
    "write_text_atomic",
]

#: ``"format"`` entry of a training checkpoint (:func:`sdsen.train.save_checkpoint`).
CHECKPOINT_FORMAT = "sdsen-checkpoint/1"
#: ``"format"`` entry of a weights file (:func:`sdsen.pretrained.save_weights`).
WEIGHTS_FORMAT = "sdsen-weights/1"


def apply_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions a plain ``open()`` or ``mkdir()`` would have given it.

    :func:`tempfile.mkstemp` creates files with mode 0600 and :func:`tempfile.mkdtemp` folders
    with 0700, private to the owner whatever the umask. After an atomic write through them, this
    sets ``0o666 & ~umask`` on a file and ``0o777 & ~umask`` on a folder (0644 / 0755 with the
    usual umask 022), so other users and group members can read the result as usual.

    Parameters
    ----------
    path : str or os.PathLike
        File or folder that this process created.
    """
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, mode & ~umask)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and
    :func:`os.replace`, so a reader, or a run interrupted while writing, never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` it into place.

    A crash mid-write never leaves a truncated file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        apply_umask(tmp)  # mkstemp's 0600 would make shipped files unreadable
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_payload(
    path: str | os.PathLike,
    what: str,
    map_location: str | torch.device = "cpu",
    fix: str = "",
) -> dict[str, Any]:
    """Read an sdsen file (checkpoint or weights) with ``torch.load(weights_only=True)``.

    The one reader behind :func:`sdsen.train.load_checkpoint`,
    :func:`sdsen.pretrained.initial_weights` and :func:`sdsen.pretrained.load_weights`; the caller checks the ``"format"`` entry.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the caller expects (``"checkpoint"``, ``"weights file"``, ...), used in errors.
    map_location : str or torch.device
        Where tensors are loaded.
    fix : str
        What to do about a file ``torch.load`` cannot read (``"Fix: ..."``), appended to the
        error.

    Returns
    -------
    dict
        The payload; a file that holds something other than a dict raises ``ValueError``.

    Raises
    ------
    ValueError
        One line for an unreadable file (truncated, empty, not a PyTorch file, pickled Python
        objects), the ``torch.load`` error chained to it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, empty or text file, pickle with objects, ...
        reason = _unreadable_reason(path, what, exc)
        raise ValueError(f"{reason}. {fix}" if fix else reason) from exc
    if not isinstance(payload, dict):
        raise ValueError(  # noqa: TRY004 - a file with the wrong content is a bad value
            f"{what} {path} holds a {type(payload).__name__}, not an sdsen payload dict"
        )
    return payload


def _unreadable_reason(path: Path, what: str, exc: Exception) -> str:
    """Why ``torch.load`` failed on ``path``, in one line (torch's own text spans many)."""
    if isinstance(exc, pickle.UnpicklingError) and zipfile.is_zipfile(path):
        found = re.search(r"GLOBAL (\S+)", str(exc))
        example = f" (such as {found.group(1)})" if found else ""
        return (
            f"{what} {path} holds pickled Python objects{example}, which "
            "torch.load(weights_only=True) refuses to run: it is not an sdsen file"
        )
    size = path.stat().st_size
    return f"{what} {path} is not a readable PyTorch file ({size:,} bytes; truncated or corrupt?)"
