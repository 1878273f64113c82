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
