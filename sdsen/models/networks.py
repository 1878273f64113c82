"""DSEN and SDSEN (Rain removal, ICIP 2019), faithful to the official networks, configurable.

Stage ``t = 1..T`` of SDSEN reads ``x_t = O - R_{t-1}`` (``R_0 = 0``, so ``x_1 = O``) and predicts
the rain layer ``R_t``; all stages share weights. Inside a stage (``C`` channels on the group, shapes
``(B, C, G, H, W)``)::

    h = LeakyReLU(lift(x_t))                                    # pre_layer
    h_i = LeakyReLU(h_{i-1} + conv_i(cat[h_{i-1}, link_i(h_i^{t-1})]))   # re_layer, 4 blocks
    R_t = decoder(h_4)                                          # dec

with ``link_i = LeakyReLU(P4ConvP4(C -> C))`` (``connect_layers``) applied to the same block's
output at the previous stage (zeros at stage 1). DSEN is one stage without links. Module names
follow the official code, so a state_dict of the official configuration has the official keys.

Equivariance: the encoder is p4 (p4m) equivariant, :math:`f(T_g x) = L_g f(x)`. With
``decoder='equivariant'`` the rain layers satisfy :math:`R_t(T_g O) = T_g R_t(O)` for every stage;
the official decoder folds the group axis into channels and breaks it.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvAct, GroupPool, SqueezeExcite, make_conv
from .config import ModelConfig

__all__ = ["DSEN", "SDSEN", "build_model", "check_image_batch"]


def check_image_batch(x: torch.Tensor) -> None:
    """Raise a ``ValueError`` naming the problem unless ``x`` is a float ``(B, 3, H, W)`` batch
    in [0, 1] (tolerance: values in [-0.5, 1.5] pass; anything further is a wrong range)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(  # noqa: TRY004 - every input problem is a ValueError (contract)
            f"expected a torch.Tensor of shape (B, 3, H, W), got {type(x).__name__}"
        )
    if x.dim() == 3 and x.shape[0] == 3:
        raise ValueError(
            f"expected a batch (B, 3, H, W), got a single image {tuple(x.shape)}: use x[None]"
        )
    if x.dim() != 4:
        raise ValueError(f"expected a batch of shape (B, 3, H, W), got {tuple(x.shape)}")
    if x.shape[1] != 3:
        hint = " (channels last? use x.permute(0, 3, 1, 2))" if x.shape[-1] == 3 else ""
        raise ValueError(
            f"expected 3 colour channels at dim 1 of (B, 3, H, W), got {tuple(x.shape)}{hint}"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"expected a floating-point image in [0, 1], got dtype {x.dtype}: "
            "convert with x.float() / 255"
        )
    if x.numel() == 0:
        raise ValueError(f"got an empty image batch {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError("the input contains NaN values; clean or mask them before deraining")
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if lo < -0.5 or hi > 1.5:
        fix = ("undo the normalisation of a centred image first" if lo < -0.5 else
               "for 8-bit data divide by 255 (x.float() / 255)")
        raise ValueError(f"expected values in [0, 1], got range [{lo:.3g}, {hi:.3g}]; {fix}")


class _DerainNet(nn.Module):
    """Shared implementation of DSEN and SDSEN; see the module docstring.

    Attributes
    ----------
    config : ModelConfig
        The configuration the model was built from (``build_model(model.config)`` rebuilds it).
    check_inputs : bool
        Validate inputs in ``forward`` (default ``True``). Each check reads the input's range
        once (one device synchronisation); set ``False`` in a tight GPU loop or under
        ``torch.compile`` once the data pipeline is known to be right.
    """

    _arch = "sdsen"

    def __init__(self, config: ModelConfig | None = None, **overrides: object) -> None:
        super().__init__()
        if config is None:
            config = ModelConfig(arch=self._arch, **overrides)  # type: ignore[arg-type]
        elif overrides:
            raise TypeError("pass either a ModelConfig or keyword overrides, not both")
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        if config.arch != self._arch:
            raise ValueError(
                f"{type(self).__name__} needs a config with arch={self._arch!r}, got "
                f"{config.arch!r}; use sdsen.models.build_model(config)"
            )
        self.config = config
        self.check_inputs = True
        c, k, grp = config.width, config.kernel_size, config.group
        self.group_order = config.group_order
        self.pre_layer = ConvAct(make_conv(grp, "plane", 3, c, k), config.negative_slope)
        c_in = 2 * c if config.links else c
        self.re_layer = nn.ModuleList(
            make_conv(grp, "group", c_in, c, k) for _ in range(config.blocks)
        )
        self.connect_layers = (
            nn.ModuleList(
                ConvAct(make_conv(grp, "group", c, c, k), config.negative_slope)
                for _ in range(config.blocks)
            )
            if config.links
            else None
        )
        se = SqueezeExcite(c) if config.se else nn.Identity()
        act = nn.LeakyReLU(config.negative_slope)
        if config.decoder == "official":
            first = nn.Conv2d(c * config.group_order, c, k, padding=k // 2)
            self.dec = nn.Sequential(first, se, act, nn.Conv2d(c, 3, 1))
        else:
            first = make_conv(grp, "group", c, c, k)
            self.dec = nn.Sequential(first, se, act, GroupPool(), nn.Conv2d(c, 3, 1))
        self.relu = nn.LeakyReLU(config.negative_slope)

    def extra_repr(self) -> str:
        return f"config={self.config}"

    def _decode(
        self, h: torch.Tensor, gate: torch.Tensor | None, stat_weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        if self.config.decoder == "official" and h.dim() == 5:
            h = h.flatten(1, 2)  # (B, C, G, H, W) -> (B, C*G, H, W), the official view
        y = self.dec[0](h)
        stat = None
        if stat_weight is not None and self.has_image_stats:
            w = stat_weight.to(y.dtype)
            red = tuple(range(2, y.dim() - 2))
            s = (y.sum(dim=red) if red else y) * w
            count = w.sum() * (y[0, 0].numel() // y.shape[-1] // y.shape[-2])
            stat = (s.sum(dim=(-2, -1)), count)
        y = self.dec[1](y, gate) if self.has_image_stats else self.dec[1](y)
        for layer in self.dec[2:]:
            y = layer(y)
        return y, stat

    @property
    def has_image_stats(self) -> bool:
        """Whether the output depends on image-wide averages (the decoder's SE block), so that
        tiles need :meth:`run_stages`' ``stat_weight`` and ``gates`` to match the whole image."""
        return isinstance(self.dec[1], SqueezeExcite)

    def gates_from_means(self, means: list[torch.Tensor]) -> list[torch.Tensor]:
        """SE gates of each stage from its image-wide mean SE input ``(B, C)`` or ``(C,)``,
        as :meth:`run_stages` takes them (``has_image_stats`` models only)."""
        return [self.dec[1].gate(m) for m in means]

    def run_stages(
        self,
        x: torch.Tensor,
        gates: list[torch.Tensor] | None = None,
        stat_weight: torch.Tensor | None = None,
        stages: int | None = None,
    ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor] | None]]:
        """The stage loop, with hooks for tiled inference (no input checks).

        Parameters
        ----------
        x
            ``(B, 3, H, W)``.
        gates
            Optional SE gates per stage, each ``(B, C)`` or ``(C,)``, replacing the ones
            computed from this input.
        stat_weight
            Optional ``(H, W)`` weights: return, per stage, the weighted sum ``(B, C)`` of the
            SE input over space (and group) and the total weight, to average over tiles.
        stages
            Run only the first ``stages`` stages (default: all ``config.stages``).

        Returns
        -------
        rains : list of torch.Tensor
            ``[R_1, ..., R_T]``, each ``(B, 3, H, W)``.
        stats : list
            Per stage ``(sum (B, C), count)``, or ``None`` without ``stat_weight`` / SE.
        """
        flip = self.config.flip_channels
        o = x.flip(1) if flip else x
        inp = o
        states: list[torch.Tensor] | None = None
        rains: list[torch.Tensor] = []
        stats: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        n_stages = self._n_stages(stages)
        for t in range(n_stages):
            h = self.pre_layer(inp)
            new_states = []
            for i, conv in enumerate(self.re_layer):
                if self.connect_layers is not None:
                    link_layer = self.connect_layers[i]
                    link = link_layer.on_zeros(h) if states is None else link_layer(states[i])
                    z = torch.cat([h, link], dim=1)
                else:
                    z = h
                h = self.relu(h + conv(z))
                new_states.append(h)
            states = new_states if self.connect_layers is not None else None
            r, stat = self._decode(h, None if gates is None else gates[t], stat_weight)
            rains.append(r)
            stats.append(stat)
            if t + 1 < n_stages:
                inp = o - r
        if flip:
            rains = [r.flip(1) for r in rains]
        return rains, stats

    def _n_stages(self, stages: int | None) -> int:
        """``stages`` checked against the model's stage count (``None``: all of them)."""
        if stages is None:
            return self.config.stages
        if isinstance(stages, bool) or not isinstance(stages, int) or not (
                1 <= stages <= self.config.stages):
            raise ValueError(
                f"stages must be an integer from 1 to the model's {self.config.stages}, got "
                f"{stages!r}"
            )
        return stages

    def forward(self, x: torch.Tensor, stages: int | None = None) -> list[torch.Tensor]:
        """Predict the rain layer of every stage.

        Parameters
        ----------
        x
            Rainy images ``(B, 3, H, W)``, float in [0, 1], any ``H`` and ``W``.
        stages
            Run only the first ``stages`` stages (they share their weights, so a model may be
            trained or run with fewer stages than it has); default all.

        Returns
        -------
        list of torch.Tensor
            ``[R_1, ..., R_T]``, each ``(B, 3, H, W)`` (one element for DSEN).
        """
        if self.check_inputs:
            check_image_batch(x)
            self._check_matches_weights(x)
        return self.run_stages(x, stages=stages)[0]

    def _check_matches_weights(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` when ``x`` and the weights differ in device, or in dtype
        outside autocast (torch's own message names C++ types, not the fix)."""
        w = next(self.parameters())
        if x.device != w.device:
            raise ValueError(
                f"the input is on {x.device} but the model on {w.device}: "
                f"move one of them, e.g. x.to({str(w.device)!r})"
            )
        if x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(
                f"the input is {x.dtype} but the model's weights are {w.dtype}: convert one "
                f"(x.to({w.dtype}) or model.to({x.dtype})), or run under torch.autocast"
            )

    def derain(self, x: torch.Tensor) -> torch.Tensor:
        """Clean estimate of the last stage, ``x - R_T``, shape ``(B, 3, H, W)`` (unclamped)."""
        return x - self.forward(x)[-1]


class SDSEN(_DerainNet):
    """The multi-stage model (official SDSEN): ``forward`` returns one rain layer per stage.

    Parameters
    ----------
    config
        A :class:`ModelConfig` with ``arch='sdsen'``; default the official configuration.
    **overrides
        Instead of ``config``: fields of a new ``ModelConfig`` (e.g. ``channels=4``).

    Examples
    --------
    >>> model = SDSEN(channels=2, stages=3)
    >>> rains = model(torch.rand(1, 3, 13, 9))
    >>> len(rains), rains[-1].shape
    (3, torch.Size([1, 3, 13, 9]))
    >>> len(model(torch.rand(1, 3, 13, 9), stages=2))
    2
    """

    _arch = "sdsen"


class DSEN(_DerainNet):
    """The single-stage model (official DSEN): ``forward`` returns a list of one rain layer.

    Examples
    --------
    >>> model = DSEN(channels=2)
    >>> [r.shape for r in model(torch.rand(2, 3, 11, 8))]
    [torch.Size([2, 3, 11, 8])]
    """

    _arch = "dsen"


def build_model(config: ModelConfig | dict | None = None) -> _DerainNet:
    """Build :class:`SDSEN` or :class:`DSEN` from a config (or its ``dataclasses.asdict``).

    Examples
    --------
    >>> model = build_model(ModelConfig(arch="dsen", channels=2))
    >>> type(model).__name__, model.config.stages
    ('DSEN', 1)
    """
    if config is None:
        config = ModelConfig()
    elif isinstance(config, dict):
        config = ModelConfig(**config)
    elif not isinstance(config, ModelConfig):
        raise TypeError(f"expected a ModelConfig or a dict, got {type(config).__name__}")
    return (SDSEN if config.arch == "sdsen" else DSEN)(config)
