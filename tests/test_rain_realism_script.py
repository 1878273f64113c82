"""benchmarks/rain_realism.py: per-layer statistics, the table, the fit, and the data guard."""

from __future__ import annotations

import numpy as np
import pytest

from sdsen.rain import RainParams


@pytest.fixture(scope="module")
def realism(load_script):
    return load_script("benchmarks/rain_realism.py")


CLEAN = np.full((96, 96, 3), 0.3, np.float32)


def _layers(realism, angles):
    return [realism.render(RainParams(angle=a, length=15, width=1.5, density=0.004,
                                      intensity=0.5, seed=i), CLEAN) for i, a in enumerate(angles)]


def test_measure_and_summarize_describe_the_streaks(realism) -> None:
    rows = [realism.measure(r, CLEAN) for r in _layers(realism, [-10.0, 10.0])]
    summary = realism.summarize(rows)
    assert summary["n"] == 2 and summary["angle_sd"] == pytest.approx(10, abs=2)
    assert 1.0 < summary["fwhm"] < 2.0 and summary["per_mp"] > 0
    assert summary["colour"].count("/") == 2 and summary["p99"] > summary["mean"] > 0
    assert summary["profile"][len(summary["profile"]) // 2] == pytest.approx(1.0)
    assert 10 < summary["psnr_p50"] <= summary["psnr_p90"] < 60


def test_fit_picks_candidates_and_prints_ranges(realism, capsys) -> None:
    real = realism.summarize([realism.measure(r, CLEAN)
                              for r in _layers(realism, [0.0, 5.0, -5.0])])
    realism.fit(real, [CLEAN], 6, seed=0)
    out = capsys.readouterr().out
    assert "6 candidates, 3 real layers" in out
    assert all(f"| {k} |" in out for k in realism.SEARCH)


def test_real_crops_inside_the_repository_are_refused(realism, tmp_path) -> None:
    target = realism.REPO / "figures" / "real.png"
    with pytest.raises(SystemExit, match="licence"):
        realism.main(["--real-crops", str(target), "--no-figures"])
    assert not target.exists()


def test_missing_folders_skip_cleanly(realism, tmp_path, capsys) -> None:
    code = realism.main(["--rain800", str(tmp_path / "a"), "--cityscapes", str(tmp_path / "b")])
    assert code == 0 and "skipping" in capsys.readouterr().out
