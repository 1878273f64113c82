"""scripts/train_pretrained.py: recipes, the zoo it records, and a two-step run end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import sdsen

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def zoo_script(load_script):
    return load_script("scripts/train_pretrained.py")


def test_every_shipped_model_has_a_recipe(zoo_script) -> None:
    # a study model is trained by this script (its recipe in ZOO) or is an `sdsen train` run
    # recorded in zoo.json; a user model is an `sdsen train` run shipped by scripts/ship_run.py,
    # its exact command in its card
    zoo = json.loads((REPO / "benchmarks" / "results" / "zoo.json").read_text())["models"]
    for name in sdsen.list_pretrained(study=True):
        assert name in zoo and (name in zoo_script.ZOO or "run_dir" in zoo[name]), name
    for name in sdsen.list_pretrained():
        assert sdsen.model_card(name)["command"].startswith("sdsen train"), name
    assert {spec["recipe"] for spec in zoo_script.ZOO.values()} <= set(zoo_script.RECIPES)


def test_recipe_override_and_scale(zoo_script) -> None:
    assert zoo_script.recipe("sdsen") == {"batch": 4, "patch": 40, "steps": 600}
    assert zoo_script.recipe("sdsen", 1.0, "gpu") == {"batch": 50, "patch": 64, "steps": 1700}
    assert zoo_script.recipe("sdsen-vertical", 0.5)["steps"] == 300
    assert zoo_script.recipe("dsen", 1e-6)["steps"] == 2  # never fewer than two steps


@pytest.mark.slow
def test_two_step_run_merges_into_an_older_zoo(zoo_script, tmp_path: Path) -> None:
    # an older zoo.json recorded the hardware once for all its models
    old = {"hardware": "old CPU", "torch": "2.0", "date": "2026-01-01", "commands": ["old"],
           "models": {"dsen": {"role": "kept", "steps": 1000}}}
    (tmp_path / "zoo.json").write_text(json.dumps(old))
    zoo_script.main(["--out", str(tmp_path), "--only", "plain-vertical", "--steps-scale",
                     "0.001", "--jobs", "1", "--device", "cpu", "--recipe", "study"])
    zoo = json.loads((tmp_path / "zoo.json").read_text())
    new, kept = zoo["models"]["plain-vertical"], zoo["models"]["dsen"]
    assert new["returncode"] == 0 and new["steps"] == 2
    assert new["train_config"]["batch_size"] == 8 and "--recipe study" in new["command"]
    assert new["hardware"].startswith("CPU") and new["date"] == zoo["date"]
    assert (kept["hardware"], kept["torch"], kept["date"]) == ("old CPU", "2.0", "2026-01-01")
    assert zoo["commands"][0] == "old" and len(zoo["commands"]) == 2
    assert (tmp_path / "weights" / "plain-vertical.pt").is_file()


@pytest.mark.slow
def test_time_limit_ships_the_checkpoint_and_says_so(zoo_script, tmp_path: Path) -> None:
    args = ["--out", str(tmp_path), "--only", "plain-vertical", "--steps-scale", "0.01",
            "--jobs", "1", "--device", "cpu", "--max-minutes", "1e-9"]
    zoo_script.main(args)
    entry = json.loads((tmp_path / "zoo.json").read_text())["models"]["plain-vertical"]
    assert (entry["steps"], entry["steps_planned"], entry["stopped_early"]) == (1, 4, True)
    assert (tmp_path / "weights" / "plain-vertical.pt").is_file()
    zoo_script.main(args[:-2])  # the same command without the limit resumes to the end
    entry = json.loads((tmp_path / "zoo.json").read_text())["models"]["plain-vertical"]
    assert (entry["steps"], entry["stopped_early"], entry["resumed_from"]) == (4, False, 1)


def test_the_device_script_parses_and_names_existing_recipes(zoo_script) -> None:
    path = REPO / "scripts" / "gpu_session.sh"
    subprocess.run(["bash", "-n", str(path)], check=True, capture_output=True)
    models = path.read_text().split('MODELS=${MODELS:-"')[1].split('"')[0].split()
    assert set(models) <= set(zoo_script.ZOO) and "gpu" in zoo_script.RECIPES  # in the zoo
