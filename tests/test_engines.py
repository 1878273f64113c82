"""Inference engines: ONNX Runtime and OpenVINO run the stage loop as eager PyTorch does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.models import SDSEN, derain_image
from sdsen.models.engines import available_engines, make_engine

COMPILED = [pytest.param(name, marks=pytest.mark.skipif(
    importlib.util.find_spec(name) is None or importlib.util.find_spec("onnxscript") is None,
    reason=f"{name} not installed")) for name in ("onnxruntime", "openvino")]


@pytest.fixture(scope="module")
def model() -> SDSEN:
    torch.manual_seed(0)
    return SDSEN(channels=2, stages=3, blocks=1).eval()


@pytest.fixture(scope="module", params=["official", "equivariant"])
def decoders(request: pytest.FixtureRequest) -> SDSEN:
    torch.manual_seed(0)
    return SDSEN(channels=2, stages=3, blocks=1, decoder=request.param).eval()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


def test_eager_is_the_model_and_bad_names_are_refused(model: SDSEN) -> None:
    assert make_engine(model, "eager") is model
    assert available_engines()[-1] == "eager"
    assert make_engine(model, "auto", device="cuda") is model  # compiled engines: CPU only
    with pytest.raises(ValueError, match="unknown engine 'tensorrt': choose one of 'auto'"):
        make_engine(model, "tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU; use engine 'eager' on cuda"):
        make_engine(model, "onnxruntime", device="cuda")


@pytest.mark.isolated
@pytest.mark.parametrize("name", COMPILED)
def test_every_variant_matches_eager_within_1e_5(decoders: SDSEN, cache: Path, name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model = decoders
    monkeypatch.setenv("SDSEN_CACHE", str(cache))
    engine = make_engine(model, name)
    x, weight = torch.rand(2, 3, 40, 36), torch.rand(40, 36)
    with torch.inference_mode():
        _, stats = model.run_stages(x, stat_weight=weight)
        gates = [model.dec[1].gate(s / c) for s, c in stats]
        for kwargs in ({}, {"gates": gates}, {"stages": 2}):
            want, _ = model.run_stages(x, **kwargs)
            got, _ = engine.run_stages(x, **kwargs)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                assert a.shape == b.shape and (a - b).abs().max() < 1e-5
        _, got_stats = engine.run_stages(x, stat_weight=weight)
    for (s, c), (s2, c2) in zip(got_stats, stats):
        assert torch.allclose(s, s2, rtol=1e-5, atol=1e-5) and float(c) == pytest.approx(float(c2))


@pytest.mark.isolated
@pytest.mark.parametrize("name", COMPILED)
def test_tiled_derain_matches_eager_and_reuses_the_cached_graphs(
        model: SDSEN, cache: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSEN_CACHE", str(cache))
    image = np.random.default_rng(0).random((70, 50, 3)).astype(np.float32)
    kwargs = {"tile": 32, "overlap": 8}  # several tiles: two passes (image-wide SE gates)
    want = derain_image(model, image, **kwargs)
    got = derain_image(model, image, engine=make_engine(model, name), **kwargs)
    assert np.abs(got - want).max() < 1e-5
    files = {p: p.stat().st_mtime_ns for p in (cache / "engines").glob("*.onnx")}
    assert len(files) >= 2  # the statistics and the gated graphs
    derain_image(model, image, engine=make_engine(model, name), **kwargs)
    assert {p: p.stat().st_mtime_ns for p in (cache / "engines").glob("*.onnx")} == files
