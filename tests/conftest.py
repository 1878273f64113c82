"""Shared pytest fixtures: deterministic seeds, the GPU marker, the repository's scripts, a tiny
stand-in for ../shared/data."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Every test starts from the same RNG state (Python, NumPy, torch)."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Exported engine graphs go to one folder per test session, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDSEN_CACHE", str(tmp_path_factory.mktemp("sdsen-cache")))
        yield


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a test with one torch intra-op thread, restoring the count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a test marked ``isolated`` alone in a fresh interpreter (a subprocess of pytest)."""
    if "isolated" not in pyfuncitem.keywords or os.environ.get("SDSEN_ISOLATED"):
        return None
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pyfuncitem.nodeid],
        cwd=pyfuncitem.config.rootpath, env={**os.environ, "SDSEN_ISOLATED": "1"},
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{pyfuncitem.nodeid} failed in its own process:\n{proc.stdout}"
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` cleanly when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """Import a script of the repository by its path, e.g. ``load_script("scripts/ship_run.py")``.

    As when the script is run, its folder is first on ``sys.path`` while it is imported, so
    that it finds its siblings (``benchmarks/_timing.py``, ``benchmarks/real_validation.py``).
    """
    repo = Path(__file__).resolve().parents[1]

    def load(relative: str) -> ModuleType:
        path = repo / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        return module

    return load


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny stand-in for ../shared/data: ``rain800_train`` (four [clean | rainy] PNGs, a
    ``val.txt`` naming 2 and 3) and ``raincityscapes_test100`` (``rain/`` + ``gt/``); the rain
    is +0.3 on every fifth column."""
    from sdsen.data import write_image

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for k in range(1, 5):
        clean = rng.uniform(0.2, 0.6, (140, 150, 3)).astype(np.float32)
        rainy = clean.copy()
        rainy[:, ::5] += 0.3
        write_image(root / "rain800_train" / f"{k}.png", np.concatenate([clean, rainy], 1))
        write_image(root / "raincityscapes_test100" / "gt" / f"{k}.png", clean)
        write_image(root / "raincityscapes_test100" / "rain" / f"{k}.png", np.clip(rainy, 0, 1))
    (root / "rain800_train" / "val.txt").write_text("2.png\n3.png\n")
    return root
