"""sdsen.models.export: the plain-PyTorch copy (bit for bit) and the ONNX graph (within 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sdsen.cli import main
from sdsen.gconv import GroupConv2d
from sdsen.models import ModelConfig, build_model, derain_image
from sdsen.models.export import DerainGraph, export_onnx, to_plain

CONFIGS = {
    "sdsen p4": ModelConfig(channels=3, stages=3, blocks=2),
    "sdsen p4m": ModelConfig(channels=2, stages=2, blocks=1, group="p4m"),
    "sdsen z2": ModelConfig(channels=2, stages=2, blocks=1, group="z2"),
    "sdsen equivariant decoder": ModelConfig(channels=2, stages=2, blocks=1,
                                             decoder="equivariant"),
    "dsen": ModelConfig(arch="dsen", channels=3, blocks=2),
}


def _model(cfg: ModelConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():  # non-trivial biases, so that their placement shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name", list(CONFIGS))
def test_plain_copy_is_bit_identical_and_has_no_group_layers(name: str) -> None:
    model = _model(CONFIGS[name])
    plain = to_plain(model)
    assert not any(isinstance(m, GroupConv2d) for m in plain.modules())
    assert not any(p.requires_grad for p in plain.parameters())
    x = torch.rand(2, 3, 19, 14)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(plain(x), model(x), strict=True))
        assert torch.equal(plain(x, stages=1)[0], model(x)[0])
    assert any(isinstance(m, GroupConv2d) for m in model.modules()) == (name != "sdsen z2")
    img = torch.rand(3, 40, 37)  # tiled inference takes the copy as it takes the model
    assert torch.equal(derain_image(plain, img, tile=24, overlap=8),
                       derain_image(model, img, tile=24, overlap=8))
    with pytest.raises(ValueError, match="values in"):
        plain(x * 3)  # the input checks stay


def test_to_plain_refuses_other_modules() -> None:
    with pytest.raises(TypeError, match="SDSEN or DSEN"):
        to_plain(torch.nn.Conv2d(3, 3, 3))


@pytest.mark.slow
def test_onnx_graph_matches_pytorch_at_any_size(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    for name in ("sdsen p4", "dsen", "sdsen p4m"):
        model = _model(CONFIGS[name])
        path = export_onnx(model, tmp_path / f"{name}.onnx", example_size=(32, 32))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for shape in ((1, 3, 32, 32), (2, 3, 45, 29)):  # other batch, height and width
            x = torch.rand(*shape)
            got = session.run(None, {"rainy": x.numpy()})[0]
            with torch.no_grad():
                ref = (x - model(x)[-1]).clamp(0, 1).numpy()
            assert got.shape == ref.shape
            assert np.abs(got - ref).max() < 1e-5, (name, shape)
    model = _model(CONFIGS["sdsen p4"])
    path = export_onnx(model, tmp_path / "two.onnx", stages=2)
    x = torch.rand(1, 3, 20, 20)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"rainy": x.numpy()})[0]
    with torch.no_grad():
        ref = DerainGraph(model, stages=2)(x).numpy()
    assert np.abs(got - ref).max() < 1e-5


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "dsen.onnx"
    assert main(["export", "--onnx", str(out), "--weights", "dsen"]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "max difference" in text and "(1 stages)" in text
    assert main(["export", "--onnx", str(out), "--weights", "dsen"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tmp_path / "x.pt"), "--weights", "dsen"]) == 1
    assert "ending in .onnx" in capsys.readouterr().err
    assert main(["export", "--onnx", str(out), "--weights", "dsen", "--stages", "2",
                 "--overwrite"]) == 1
    assert "--stages must be in 1..1" in capsys.readouterr().err
