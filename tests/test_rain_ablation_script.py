"""benchmarks/rain_ablation.py: scoring on both real families, and its argument checks."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def ablation(load_script):
    return load_script("benchmarks/rain_ablation.py")


class _Oracle(torch.nn.Module):
    """Predicts the rain of the fixture exactly (every fifth column, +0.3), or nothing."""

    def __init__(self, perfect: bool) -> None:
        super().__init__()
        self.perfect = perfect

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        r = torch.zeros_like(x)
        if self.perfect:
            r[..., ::5] = 0.3
        return [r]


def test_score_both_families_input_and_output(ablation, data_root) -> None:
    none = ablation.score(_Oracle(False), 5, data_root)
    assert set(none) == {"rain800 val", "raincityscapes"}
    for (inp, out) in none.values():
        assert inp == out  # predicting no rain leaves the input's scores
    perfect = ablation.score(_Oracle(True), 5, data_root)
    for family, (inp, out) in perfect.items():
        assert out[0] > inp[0] + 10 and out[1] > inp[1], family


def test_unknown_preset_is_refused(ablation, tmp_path) -> None:
    with pytest.raises(SystemExit, match="drizzle"):
        ablation.main(["--out", str(tmp_path), "--presets", "drizzle", "--eval-only"])
