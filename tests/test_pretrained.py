"""The shipped weights: listed, loadable, documented, and usable on any image size."""

from __future__ import annotations

import pytest
import torch

import sdsen
from sdsen.pretrained import WEIGHTS_DIR, list_pretrained, load_weights, model_card, save_weights

NAMES = list_pretrained() + list_pretrained(study=True)
CARD_FIELDS = {"role", "model_config", "training_data", "train_config", "steps", "hardware",
               "command", "metrics"}


def test_the_default_model_is_shipped_and_listed_first() -> None:
    assert NAMES and NAMES[0] == "sdsen"
    assert sdsen.list_pretrained() + sdsen.list_pretrained(study=True) == NAMES
    assert sorted(NAMES) == sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))  # none left out


def test_the_compared_models_are_shipped() -> None:
    # for users: the default and the fast one-stage model; apart: the studies' models (the
    # paper's comparisons at full scale, the near-vertical study at DSEN scale)
    assert list_pretrained()[:1] == ["sdsen"] and "dsen" in list_pretrained()
    study = {"plain", "sdsen-p4m", "dsen-vertical", "plain-vertical", "dsen-p4m-vertical"}
    assert study <= set(list_pretrained(study=True))
    assert all(model_card(n)["study"] for n in list_pretrained(study=True))
    assert sdsen.load_pretrained("plain").config.group == "z2"
    assert sdsen.load_pretrained("sdsen-p4m").config.group == "p4m"


@pytest.mark.parametrize("name", NAMES)
def test_every_model_loads_in_eval_mode_with_its_card(name: str) -> None:
    model = sdsen.load_pretrained(name)
    assert not model.training
    card = model_card(name)
    assert CARD_FIELDS <= set(card), f"{name}: card misses {CARD_FIELDS - set(card)}"
    assert card["model_config"] == {**card["model_config"], **vars(model.config)}
    # trained by scripts/train_pretrained.py, or an `sdsen train` run shipped by scripts/ship_run.py
    assert card["steps"] > 0 and card["command"].startswith(
        ("python scripts/train_pretrained.py", "sdsen train"))


def test_default_model_keeps_size_and_range_of_an_odd_image() -> None:
    model = sdsen.load_pretrained("sdsen")
    x = torch.rand(1, 3, 23, 17, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = model.derain(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # unclamped, yet near [0, 1] and near the input: the estimate, not a rescaled image
    assert -0.2 < float(out.min()) and float(out.max()) < 1.2
    assert float((out - x).abs().mean()) < 0.1


def test_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ValueError, match="sdsen"):
        sdsen.load_pretrained("no-such-model")


def test_save_and_load_round_trip(tmp_path) -> None:
    model = sdsen.load_pretrained(NAMES[-1])
    path = save_weights(model, tmp_path / "copy.pt")
    again = load_weights(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert (path.stat().st_mode & 0o044) == 0o044, "weights files must be readable by others"


def test_a_training_checkpoint_is_refused_with_the_right_pointer(tmp_path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {}, "step": 3}, path)
    with pytest.raises(ValueError, match="model_from_checkpoint"):
        load_weights(path)


def test_an_unreadable_weights_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError) as err:
        load_weights(path)
    assert str(err.value) == (
        f"weights file {path} is not a readable PyTorch file (16 bytes; truncated or corrupt?). "
        "Fix: copy or download the file again, or pass another weights file"
    )
    assert err.value.__cause__ is not None  # torch's own error stays chained
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"broken\.pt is not a readable PyTorch file \(0 bytes"):
        load_weights(path)
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="broken.pt holds a list"):
        load_weights(path)
    with pytest.raises(FileNotFoundError, match="weights file .*missing.pt does not exist"):
        load_weights(tmp_path / "missing.pt")


def test_a_damaged_shipped_weights_file_says_reinstall(monkeypatch, tmp_path) -> None:
    from sdsen import pretrained

    shipped = tmp_path / "weights"
    shipped.mkdir()
    (shipped / "sdsen.pt").write_bytes(b"version https://git-lfs")  # e.g. a pointer file
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", shipped.resolve())
    with pytest.raises(ValueError, match=r"sdsen\.pt is not a readable PyTorch file \(23 bytes;"
                       r" truncated or corrupt\?\)\. Fix: reinstall sdsen to restore its shipped"):
        pretrained.load_pretrained("sdsen")


def test_weights_live_in_the_package() -> None:
    assert all((WEIGHTS_DIR / f"{n}.pt").is_file() for n in NAMES)


def test_cards_markdown_states_the_validation_curve_and_its_slope() -> None:
    from sdsen.pretrained import cards_markdown

    trend = {"what": "crops", "value": 25.2, "step": 2500, "best": 25.3, "best_step": 2000,
             "tail_change": 0.31}
    text = cards_markdown({"m": {"role": "r", "study": False, "validation": trend}})
    assert "Y 25.20 dB at step 2500 (best 25.30 at step 2000), +0.31 dB over the last 20 %" in text
    text = cards_markdown({"m": {"role": "r", "study": False,
                                 "validation": {**trend, "tail_change": None}}})
    assert "too few validations in the last 20 % of steps for a slope" in text
