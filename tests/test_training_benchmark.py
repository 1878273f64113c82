"""benchmarks/training.py --amp-sweep: every precision setting timed on the same step."""

from __future__ import annotations

import pytest

from sdsen.models import ModelConfig


@pytest.fixture(scope="module")
def training(load_script):
    return load_script("benchmarks/training.py")


@pytest.mark.slow
def test_amp_sweep_times_each_setting_and_tabulates(training) -> None:
    tiny = ModelConfig(channels=2, stages=2, blocks=1)
    times = training.bench_amp("cpu", steps=2, batch=1, warmup=1, model=tiny)
    assert list(times) == ["bf16", "fp16", "off"]
    assert all(len(t) == 2 and min(t) > 0 for t in times.values())
    table = training._amp_table({"bf16": [0.05, 0.07], "fp16": [0.08, 0.08], "off": [0.1, 0.1]})
    assert "| bf16 | 60.0 | 20.0 min | 0.600 |" in table
    assert "| off | 100.0 | 33.3 min | 1.000 |" in table
