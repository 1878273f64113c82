"""Official weights: an independent reference of the official forward, load / export round trips.

The reference below is written from DESIGN.md section 2 (the official ``config/model.py``), with
the official key names, on ``sdsen.gconv`` layers; it shares no code with ``sdsen.models``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sdsen.gconv import P4ConvP4, P4ConvZ2
from sdsen.models import DSEN, SDSEN, build_model, export_official, load_official
from sdsen.models.config import ModelConfig

C, K, DEPTH = 10, 5, 7  # official settings: channel, kernel, depth (4 blocks)


def official_state_dict(arch: str, seed: int, channel: int = C) -> dict[str, torch.Tensor]:
    """Random weights with the official key names and shapes (scaled as a trained net's)."""
    g = torch.Generator().manual_seed(seed)
    c = channel

    def rnd(*shape: int, fan: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) / fan**0.5

    sd = {
        "pre_layer.conv0.weight": rnd(c, 3, 1, K, K, fan=3 * K * K),
        "pre_layer.conv0.bias": rnd(c, fan=4),
    }
    c_in = 2 * c if arch == "SDSEN" else c
    for i in range(DEPTH - 3):
        sd[f"re_layer.{i}.weight"] = rnd(c, c_in, 4, K, K, fan=c_in * 4 * K * K)
        sd[f"re_layer.{i}.bias"] = rnd(c, fan=4)
    if arch == "SDSEN":
        for i in range(DEPTH - 3):
            sd[f"connect_layers.{i}.conv0.weight"] = rnd(c, c, 4, K, K, fan=c * 4 * K * K)
            sd[f"connect_layers.{i}.conv0.bias"] = rnd(c, fan=4)
    sd.update(
        {
            "dec.0.weight": rnd(c, 4 * c, K, K, fan=4 * c * K * K),
            "dec.0.bias": rnd(c, fan=4),
            "dec.1.fc.0.weight": rnd(c // 2, c, fan=c),
            "dec.1.fc.0.bias": rnd(c // 2, fan=4),
            "dec.1.fc.2.weight": rnd(c, c // 2, fan=c // 2),
            "dec.1.fc.2.bias": rnd(c, fan=4),
            "dec.3.weight": rnd(3, c, 1, 1, fan=c),
            "dec.3.bias": rnd(3, fan=16),
        }
    )
    return sd


def reference_forward(
    sd: dict[str, torch.Tensor], x: torch.Tensor, arch: str, stage_num: int = 8
) -> list[torch.Tensor]:
    """The official forward, literally: BGR in, list of rain layers out."""
    c = sd["pre_layer.conv0.bias"].shape[0]
    n_blocks = DEPTH - 3

    def load(layer: torch.nn.Module, prefix: str) -> torch.nn.Module:
        layer.weight.data.copy_(sd[prefix + ".weight"])
        layer.bias.data.copy_(sd[prefix + ".bias"])
        return layer

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    pre = load(P4ConvZ2(3, c, K, padding=2), "pre_layer.conv0")
    c_in = 2 * c if arch == "SDSEN" else c
    re = [load(P4ConvP4(c_in, c, K, padding=2), f"re_layer.{i}") for i in range(n_blocks)]
    links = (
        [load(P4ConvP4(c, c, K, padding=2), f"connect_layers.{i}.conv0") for i in range(n_blocks)]
        if arch == "SDSEN"
        else []
    )

    def dec(t: torch.Tensor) -> torch.Tensor:
        t = t.view(t.shape[0], -1, t.shape[3], t.shape[4])
        t = F.conv2d(t, sd["dec.0.weight"], sd["dec.0.bias"], padding=2)
        y = t.mean(dim=(2, 3))
        y = torch.relu(F.linear(y, sd["dec.1.fc.0.weight"], sd["dec.1.fc.0.bias"]))
        y = torch.sigmoid(F.linear(y, sd["dec.1.fc.2.weight"], sd["dec.1.fc.2.bias"]))
        t = lrelu(t * y.view(y.shape[0], y.shape[1], 1, 1))
        return F.conv2d(t, sd["dec.3.weight"], sd["dec.3.bias"])

    ori, oups = x, []
    if arch == "DSEN":
        h = lrelu(pre(x))
        for lay in re:
            h = lrelu(h + lay(h))
        return [dec(h)]
    old = [torch.zeros(x.shape[0], c, 4, x.shape[2], x.shape[3]) for _ in range(n_blocks)]
    for _ in range(stage_num):
        status = []
        h = lrelu(pre(x))
        for i, lay in enumerate(re):
            h = lrelu(h + lay(torch.cat([h, lrelu(links[i](old[i]))], dim=1)))
            status.append(h)
        r = dec(h)
        oups.append(r)
        x = ori - r
        old = status
    return oups


@pytest.mark.parametrize("arch", ["SDSEN", "DSEN"])
def test_load_official_matches_reference_bgr_and_rgb(arch: str) -> None:
    sd = official_state_dict(arch, seed=1)
    x = torch.rand(2, 3, 17, 12)
    with torch.no_grad():
        ref = reference_forward(sd, x, arch)
        bgr = load_official(sd, arch=arch, channel_order="bgr")(x)
        rgb = load_official(sd, arch=arch, channel_order="rgb")(x.flip(1))
    assert len(ref) == len(bgr) == len(rgb) == (8 if arch == "SDSEN" else 1)
    for t, (a, b, c) in enumerate(zip(ref, bgr, rgb)):
        assert (a - b).abs().max() < 1e-6, t
        assert (a - c.flip(1)).abs().max() < 1e-6, t
    assert ref[-1].abs().max() > 1e-2  # the comparison is not between zeros


def test_official_parameter_counts() -> None:
    assert sum(p.numel() for p in SDSEN().parameters()) == 130_998
    assert sum(p.numel() for p in DSEN().parameters()) == 50_958
    for arch, n in (("SDSEN", 130_998), ("DSEN", 50_958)):
        assert sum(v.numel() for v in official_state_dict(arch, 0).values()) == n


def test_keys_are_official() -> None:
    assert set(SDSEN().state_dict()) == set(official_state_dict("SDSEN", 0))
    assert set(DSEN().state_dict()) == set(official_state_dict("DSEN", 0))


def test_checkpoint_dict_path_and_inference(tmp_path) -> None:
    sd = official_state_dict("DSEN", seed=2, channel=4)
    net = DSEN(channels=4)
    opt = torch.optim.Adam(net.parameters())
    net(torch.rand(1, 3, 8, 8))[0].sum().backward()
    opt.step()
    ckpt = {"net": sd, "clock": 123, "opt": opt.state_dict()}
    path = tmp_path / "latest"
    torch.save(ckpt, path)
    for source in (ckpt, path, str(path)):
        model = load_official(source, arch=None, channel_order="bgr")
        assert isinstance(model, DSEN) and not model.training
        assert model.config.channels == 4 and model.config.stages == 1
        for k, v in model.state_dict().items():
            assert torch.equal(v, sd[k]), k


def test_round_trip_exact_and_channel_orders() -> None:
    sd = official_state_dict("SDSEN", seed=3, channel=4)
    model = load_official(sd, stages=3)
    assert model.config == ModelConfig(channels=4, stages=3, flip_channels=True)
    back = export_official(model)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)
    # a native RGB model -> official BGR weights -> loaded as 'rgb' gives the same function
    native = SDSEN(channels=3, stages=2).eval()
    x = torch.rand(1, 3, 15, 10)
    again = load_official(export_official(native, channel_order="bgr"), stages=2)
    same = load_official(export_official(native), stages=2, channel_order="bgr")
    with torch.no_grad():
        for a, b, c in zip(native(x), again(x), same(x)):
            assert (a - b).abs().max() < 1e-6
            assert torch.equal(a, c)


def test_mismatch_lists_offending_keys() -> None:
    sd = official_state_dict("SDSEN", seed=0)
    sd["re_layer.1.weight"] = torch.zeros(10, 20, 4, 3, 3)
    del sd["dec.3.bias"]
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as info:
        load_official(sd)
    msg = str(info.value)
    assert "missing key 'dec.3.bias'" in msg
    assert "unexpected key 'extra.weight'" in msg
    assert "re_layer.1.weight" in msg and "(10, 20, 4, 5, 5)" in msg and "(10, 20, 4, 3, 3)" in msg
    stray = official_state_dict("SDSEN", seed=0)
    stray["re_layer.7.weight"] = stray["re_layer.3.weight"].clone()
    with pytest.raises(ValueError) as info:
        load_official(stray)
    assert "unexpected key 're_layer.7.weight'" in str(info.value)
    assert "missing" not in str(info.value)  # not read as an 8-block net missing blocks 4-6
    gap = official_state_dict("SDSEN", seed=0)
    del gap["re_layer.2.weight"]
    with pytest.raises(ValueError) as info:
        load_official(gap)
    assert "missing key 're_layer.2.weight'" in str(info.value)
    assert "unexpected" not in str(info.value)
    with pytest.raises(ValueError, match="connect_layers") as info:
        load_official(official_state_dict("DSEN", 0), arch="SDSEN")
    assert "look like DSEN weights: pass arch='DSEN'" in str(info.value)
    assert "look like" not in msg  # SDSEN keys, asked for SDSEN: no arch hint
    with pytest.raises(ValueError, match="channel_order"):
        load_official(official_state_dict("DSEN", 0), channel_order="rbg")


@pytest.mark.parametrize("kw", [{"group": "p4m"}, {"decoder": "equivariant"}, {"links": False}])
def test_export_refuses_unofficial_models(kw: dict) -> None:
    with pytest.raises(ValueError, match="official code cannot represent"):
        export_official(build_model(ModelConfig(channels=2, stages=2, **kw)))
