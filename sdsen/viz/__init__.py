"""Figures for the notebooks and benchmarks, each saved to ``figures/`` by :func:`save_figure`.

Plotting helpers live in submodules by topic and return matplotlib figures; nothing here changes
global matplotlib state (no ``rcParams`` edits on import).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["figures_dir", "save_figure"]


def figures_dir(start: str | os.PathLike | None = None) -> Path:
    """The folder figures are written to.

    ``$SDSEN_FIGURES_DIR`` if set; else ``figures/`` at the root of the sdsen checkout that
    contains ``start`` (default: the working directory, so a notebook in ``notebooks/`` writes to
    the repository's ``figures/``); else ``./figures`` (e.g. on Colab).
    """
    env = os.environ.get("SDSEN_FIGURES_DIR")
    if env:
        return Path(env)
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.exists() and 'name = "sdsen"' in pyproject.read_text():
            return folder / "figures"
    return here / "figures"


def save_figure(fig: Figure, name: str, *, formats: tuple[str, ...] = ("png",), dpi: int = 120,
                folder: str | os.PathLike | None = None) -> list[Path]:
    """Save ``fig`` as ``figures/<name>.<fmt>`` for each format and return the paths.

    Parameters
    ----------
    fig
        The matplotlib figure.
    name
        File stem, named after the notebook that shows it (``"02_filter_banks"``).
    formats
        ``("png",)`` by default; add ``"svg"`` for plots without photographs.
    dpi
        Resolution of raster formats.
    folder
        Override :func:`figures_dir`.
    """
    out = Path(folder) if folder is not None else figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        metadata = {"Software": None} if fmt == "png" else {"Date": None}
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    return paths
