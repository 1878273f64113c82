"""The project's set-up files agree with each other (what CI and Binder install)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_every_runtime_and_extra_dependency() -> None:
    project = _pyproject()["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in ("notebooks", "test"):
        wanted |= {_name(r) for r in project["optional-dependencies"][extra]}
    env = (ROOT / "environment.yml").read_text()
    listed = {_name(m) for m in re.findall(r"^\s+- ([A-Za-z][\w.\-]*[^\n]*)$", env, re.MULTILINE)}
    assert wanted <= listed, f"environment.yml misses {sorted(wanted - listed)}"


def test_binder_gets_a_cpu_torch_pinned_like_the_makefile() -> None:
    env = (ROOT / "environment.yml").read_text()
    make = (ROOT / "Makefile").read_text()
    pin = re.search(r"TORCH_SPEC\s*\?=\s*(\S+)", make).group(1)
    assert f"- {pin}" in env
    assert "download.pytorch.org/whl/cpu" in env
    assert "download.pytorch.org/whl/cpu" in make


def test_opencv_is_the_headless_build() -> None:
    deps = [_name(r) for r in _pyproject()["project"]["dependencies"]]
    assert "opencv-python-headless" in deps and "opencv-python" not in deps


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make notebooks" in readme
    assert re.search(r"^make test$", ci, re.MULTILINE)


def test_console_script_points_at_the_cli() -> None:
    assert _pyproject()["project"]["scripts"]["sdsen"] == "sdsen.cli:main"


def test_every_notebook_badge_and_setup_cell_use_the_one_repository_address() -> None:
    repo = _pyproject()["project"]["urls"]["Repository"]
    slug = repo.removeprefix("https://github.com/")
    for nb in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        text = nb.read_text()
        assert f'REPOSITORY = \\"{repo}\\"' in text, nb.name  # the setup cell clones it
        assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{nb.name}" in text
        assert f"mybinder.org/v2/gh/{slug}/main" in text
        others = set(re.findall(r"github\.com/(?:github/)?([\w.-]+/[\w.-]+?)(?:/|\\|\"|\)|$)",
                                text)) - {slug, "prismformore/SDSEN", "tscohen/GrouPy",
                                          "XiaLiPKU/RESCAN", "hezhangsprinter/ID-CGAN"}
        assert not others, f"{nb.name} names another repository: {others}"
