"""Export: a plain-PyTorch copy of a model (ordinary ``Conv2d`` layers) and an ONNX file.

:func:`to_plain` replaces every group convolution by an ``nn.Conv2d`` whose weight is the
layer's expanded filter bank (every rotated / mirrored copy, :meth:`GroupConv2d.conv2d_weight`),
so the copy needs nothing of :mod:`sdsen.gconv` at run time and computes the same numbers bit
for bit. :func:`export_onnx` writes the image-to-image network (``O -> clamp(O - R_T)``)
with dynamic batch, height and width through ``torch.export`` (the input checks stay outside
the exported graph).
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..gconv import GroupConv2d
from .networks import _DerainNet, check_image_batch

__all__ = ["DerainGraph", "PlainGroupConv", "export_onnx", "to_plain"]


class PlainGroupConv(nn.Module):
    """A group convolution with its expanded filter bank baked into one ``nn.Conv2d``.

    Takes ``(B, C_in, G_in, H, W)`` (or the flattened ``(B, C_in * G_in, H, W)``, or
    ``(B, C_in, H, W)`` for a lifting layer) and returns ``(B, C_out, G, H', W')``, adding the
    bias after the convolution as the group layer does, so the outputs are identical.

    Examples
    --------
    >>> from sdsen.gconv import P4ConvP4
    >>> layer = P4ConvP4(3, 2, kernel_size=3, padding=1)
    >>> plain = PlainGroupConv(layer)
    >>> x = torch.rand(1, 3, 4, 8, 8)
    >>> plain.conv.weight.shape, bool(torch.equal(plain(x), layer(x)))
    (torch.Size([8, 12, 3, 3]), True)
    """

    def __init__(self, layer: GroupConv2d) -> None:
        super().__init__()
        with torch.no_grad():
            weight = layer.conv2d_weight().detach().clone()
        self.out_channels, self.order = layer.out_channels, layer.group.order
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[-2:]),
                              stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, bias=False)
        self.conv.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if layer.bias is None else nn.Parameter(
            layer.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            x = x.flatten(1, 2)
        y = self.conv(x).unflatten(1, (self.out_channels, self.order))
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)


def to_plain(model: _DerainNet) -> _DerainNet:
    """A copy of ``model`` whose group convolutions are ordinary ``nn.Conv2d`` layers.

    The copy is in eval mode, its parameters are frozen, and it gives the same outputs as
    ``model`` bit for bit (same ``conv2d`` calls, bias added afterwards). It keeps the stage
    loop, the decoder and the input checks of ``model.forward``; :func:`sdsen.models.derain_image`
    accepts it as it accepts the original.

    Parameters
    ----------
    model
        A :class:`~sdsen.models.SDSEN` or :class:`~sdsen.models.DSEN`.

    Returns
    -------
    The plain copy (the original is left as it was).

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> model = SDSEN(channels=2, stages=2, blocks=1).eval()
    >>> plain = to_plain(model)
    >>> x = torch.rand(1, 3, 16, 12)
    >>> all(torch.equal(a, b) for a, b in zip(plain(x), model(x)))
    True
    >>> any(isinstance(m, GroupConv2d) for m in plain.modules())
    False
    """
    if not isinstance(model, _DerainNet):
        raise TypeError(f"to_plain expects an SDSEN or DSEN model, got {type(model).__name__}")
    plain = copy.deepcopy(model).eval()
    for parent in list(plain.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, GroupConv2d):
                setattr(parent, name, PlainGroupConv(child))
    for p in plain.parameters():
        p.requires_grad_(False)
    return plain


class DerainGraph(nn.Module):
    """The traceable image-to-image network: ``(B, 3, H, W)`` rainy -> derained, in [0, 1].

    No input checks inside (they read values, which tracing cannot follow): check with
    :func:`sdsen.models.check_image_batch` before calling it, as :func:`export_onnx` and
    ``sdsen export`` do.
    """

    def __init__(self, model: _DerainNet, stages: int | None = None) -> None:
        super().__init__()
        self.net = model
        self.stages = stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rain = self.net.run_stages(x, stages=self.stages)[0][-1]
        return (x - rain).clamp(0.0, 1.0)


def export_onnx(
    model: _DerainNet,
    path: str | os.PathLike,
    *,
    stages: int | None = None,
    example_size: tuple[int, int] = (64, 64),
    opset: int = 18,
) -> Path:
    """Write ``model`` as an ONNX graph ``rainy (1..B, 3, H, W) -> derained (B, 3, H, W)``.

    Height, width and batch are dynamic. The graph is the plain copy (:func:`to_plain`):
    ``Conv`` nodes with the expanded filter banks.

    Parameters
    ----------
    model
        An SDSEN / DSEN.
    path
        Output ``.onnx`` file (its folder is created).
    stages
        Run only the first ``stages`` stages (default all).
    example_size
        ``(H, W)`` of the example input used for tracing.
    opset
        ONNX opset version.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    graph = DerainGraph(to_plain(model), stages).eval()
    example = torch.rand(1, 3, *example_size)
    check_image_batch(example)
    dims = {"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"),
                  3: torch.export.Dim("width")}}
    return onnx_export(graph, (example,), path, input_names=["rainy"],
                       output_names=["derained"], dynamic_shapes=dims, opset=opset)


def onnx_export(
    graph: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: str | os.PathLike,
    *,
    input_names: list[str],
    dynamic_shapes: dict[str, Any],
    output_names: list[str] | None = None,
    opset: int = 18,
) -> Path:
    """Trace ``graph`` on ``args`` with the dynamo ONNX exporter and write one ``.onnx`` file
    atomically (a half-written file never appears at ``path``; its folder is created).

    Used by :func:`export_onnx` and by the ONNX engines' cached graphs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on axis names
            torch.onnx.export(graph, args, tmp, input_names=input_names,
                              output_names=output_names, opset_version=opset,
                              dynamic_shapes=dynamic_shapes, dynamo=True, verbose=False,
                              external_data=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
