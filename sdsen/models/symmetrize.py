"""Turn the official decoder into the equivariant one, keeping what it learned.

The official decoder folds the group axis into channels, ``Conv2d(C*G -> C)`` on
``(B, C*G, H, W)``, and so breaks the encoder's equivariance. The equivariant decoder has a
group convolution ``(C -> C)`` with as many weights, then the same SE block, activation, a mean
over the group axis and the same 1x1 output convolution. Given the official filters as the
group convolution's base filters, its output for the identity element is the official
convolution's (the same filters; equal up to float rounding); the others are that convolution
applied to the transformed feature maps, and the group mean averages them (4 for p4, 8 for
p4m). The result is exactly equivariant to the group, and close to the source model wherever
its decoder already treats rotated inputs alike (a model trained with rotated data does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import nn

from .config import ModelConfig
from .networks import build_model

__all__ = ["equivariant_decoder_state", "to_equivariant_decoder"]


def equivariant_decoder_state(
    state: Mapping[str, torch.Tensor], config: ModelConfig
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The config and state dict of ``config``'s model with ``decoder='equivariant'``.

    Parameters
    ----------
    state
        State dict of a model built from ``config`` (``decoder='official'``, group p4 or p4m).
    config
        Its configuration.

    Returns
    -------
    (ModelConfig, dict)
        The new configuration and a state dict for it: ``dec.0.weight`` ``(C, C*G, k, k)``
        becomes the group filters ``(C, C, G, k, k)``, ``dec.3`` (the 1x1 output convolution)
        becomes ``dec.4``; every other tensor is unchanged.

    Examples
    --------
    >>> from sdsen.models import ModelConfig, build_model
    >>> cfg = ModelConfig(channels=2, stages=2, blocks=1)
    >>> new_cfg, new_state = equivariant_decoder_state(build_model(cfg).state_dict(), cfg)
    >>> new_cfg.decoder, tuple(new_state["dec.0.weight"].shape)
    ('equivariant', (2, 2, 4, 5, 5))
    """
    if config.decoder != "official" or config.group == "z2":
        raise ValueError(
            f"expected a p4 / p4m model with decoder='official', got group={config.group!r}, "
            f"decoder={config.decoder!r}"
        )
    out = dict(state)
    w = out.pop("dec.0.weight")
    c_out, folded, k, _ = w.shape
    out["dec.0.weight"] = w.reshape(c_out, folded // config.group_order, config.group_order, k, k)
    for name in ("weight", "bias"):
        out[f"dec.4.{name}"] = out.pop(f"dec.3.{name}")
    return dataclasses.replace(config, decoder="equivariant"), out


def to_equivariant_decoder(model: nn.Module) -> nn.Module:
    """A new model (same device and dtype) with the equivariant decoder made from ``model``'s
    official one (see the module docstring); ``model`` is left as it is.

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> to_equivariant_decoder(SDSEN(channels=2, stages=2, blocks=1)).config.decoder
    'equivariant'
    """
    cfg, state = equivariant_decoder_state(model.state_dict(), model.config)
    param = next(model.parameters())
    out = build_model(cfg).to(param.device, param.dtype)
    out.load_state_dict(state)
    return out.train(model.training)
