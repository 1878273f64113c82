"""Inference engines: the stage loop of a model run by eager PyTorch, ONNX Runtime or OpenVINO.

An engine has the model's :meth:`~sdsen.models.SDSEN.run_stages` interface (rain layers of the
first ``stages`` stages, the SE hooks of tiled inference), so :func:`sdsen.models.derain_image`
runs its tiles through any of them. The compiled engines run the plain copy of the model
(:func:`sdsen.models.export.to_plain`) exported to ONNX once per model, stage count and variant,
and kept in a cache folder (:func:`cache_dir`), so a second call starts in seconds. Their
outputs differ from eager PyTorch by rounding only (a different convolution code path).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .export import onnx_export, to_plain
from .networks import _DerainNet

__all__ = ["ENGINES", "Engine", "OnnxEngine", "available_engines", "cache_dir", "make_engine"]

#: engine names, fastest first on the CPUs measured (benchmarks/README.md, Inference engines)
ENGINES = ("openvino", "onnxruntime", "eager")

_NEEDS = {"onnxruntime": ("onnx", "onnxscript", "onnxruntime"),
          "openvino": ("onnx", "onnxscript", "openvino")}


class Engine(Protocol):
    """What :func:`~sdsen.models.derain_image` needs of a model: its stage loop."""

    def run_stages(self, x: torch.Tensor, gates: list[torch.Tensor] | None = None,
                   stat_weight: torch.Tensor | None = None, stages: int | None = None
                   ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor] | None]]:
        """See :meth:`sdsen.models.SDSEN.run_stages`."""


def available_engines() -> list[str]:
    """The engines whose packages are installed, fastest first (``'eager'`` always).

    Examples
    --------
    >>> available_engines()[-1]
    'eager'
    """
    return [name for name in ENGINES if not _missing(name)]


def _missing(name: str) -> list[str]:
    """The packages engine ``name`` needs that are not installed."""
    return [p for p in _NEEDS.get(name, ()) if importlib.util.find_spec(p) is None]


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$SDSEN_CACHE``, else ``$XDG_CACHE_HOME/sdsen`` (default
    ``~/.cache/sdsen``), subfolder ``engines``."""
    root = os.environ.get("SDSEN_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sdsen"
    return Path(root) / "engines"


def make_engine(model: _DerainNet, name: str = "auto", device: torch.device | str = "cpu",
                threads: int | None = None) -> Any:
    """The engine ``name`` for ``model``: ``'auto'`` (the fastest installed one on a CPU, eager
    PyTorch on a GPU), ``'eager'`` (the model itself), ``'onnxruntime'`` or ``'openvino'``.

    Parameters
    ----------
    model
        An SDSEN / DSEN; the compiled engines copy its weights as they are now.
    name
        Engine name or ``'auto'``.
    device
        Where the model runs; the compiled engines run on the CPU only.
    threads
        Threads of a compiled engine (default ``torch.get_num_threads()``).

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> model = SDSEN(channels=2, stages=2, blocks=1)
    >>> make_engine(model, "eager") is model
    True
    """
    device = torch.device(device)
    if name == "auto":
        name = available_engines()[0] if device.type == "cpu" else "eager"
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: choose one of 'auto', {', '.join(ENGINES)}")
    if name == "eager":
        return model
    if device.type != "cpu":
        raise ValueError(f"the {name} engine runs on the CPU; use engine 'eager' on {device}")
    missing = _missing(name)
    if missing:
        raise ValueError(f"the {name} engine needs {', '.join(missing)}: pip install "
                         f"'sdsen[fast]' (or pip install {' '.join(missing)})")
    return OnnxEngine(model, name, threads=threads)


class _StagesGraph(nn.Module):
    """The traceable stage loop of one tiled-inference variant (``mode``):

    - ``'rains'``: ``x (B, 3, H, W)`` -> rain layers ``(T, B, 3, H, W)``;
    - ``'gated'``: ``x``, SE gates ``(T, B, C)`` -> rain layers;
    - ``'stats'``: ``x``, weights ``(H, W)`` -> weighted SE sums ``(T, B, C)``, counts ``(T,)``.
    """

    def __init__(self, net: _DerainNet, stages: int, mode: str) -> None:
        super().__init__()
        self.net, self.stages, self.mode = net, stages, mode

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "stats":
            _, stats = self.net.run_stages(x, stat_weight=extra, stages=self.stages)
            return (torch.stack([s for s, _ in stats]),
                    torch.stack([c.to(x.dtype) for _, c in stats]))
        gates = None if extra is None else list(extra.unbind(0))
        return torch.stack(self.net.run_stages(x, gates=gates, stages=self.stages)[0])


def _weights_key(model: _DerainNet) -> str:
    """A digest of the model's config and weights (names the cached graphs)."""
    h = hashlib.sha256(repr(model.config).encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class OnnxEngine:
    """A model's stage loop as ONNX graphs run by ONNX Runtime or OpenVINO (CPU, float32).

    Built by :func:`make_engine`; each variant (plain, gated, statistics) and stage count is
    exported on first use into :func:`cache_dir`.

    Examples
    --------
    >>> from sdsen.models import SDSEN
    >>> model = SDSEN(channels=2, stages=2, blocks=1).eval()
    >>> engine = make_engine(model, "onnxruntime")  # doctest: +SKIP
    >>> rains, _ = engine.run_stages(torch.rand(1, 3, 32, 32))  # doctest: +SKIP
    """

    def __init__(self, model: _DerainNet, backend: str, threads: int | None = None) -> None:
        self.backend = backend
        self.config = model.config
        self.threads = threads or torch.get_num_threads()
        self._plain = to_plain(model).cpu()
        self._key = _weights_key(self._plain)
        self._runners: dict[tuple[str, int], Any] = {}

    def _path(self, mode: str, stages: int) -> Path:
        return cache_dir() / f"{self._key}-{mode}-{stages}.onnx"

    def is_cached(self, stages: int | None = None) -> bool:
        """Whether the plain graph of the first ``stages`` stages (default all) was exported."""
        return self._path("rains", self._plain._n_stages(stages)).exists()

    def _graph(self, mode: str, stages: int) -> Path:
        """The cached ONNX file of one variant, exported when missing."""
        path = self._path(mode, stages)
        if path.exists():
            return path
        graph = _StagesGraph(self._plain, stages, mode).eval()
        x = torch.rand(1, 3, 64, 48)
        args: tuple[torch.Tensor, ...] = (x,)
        dims: dict[str, Any] = {"x": {0: torch.export.Dim("batch"),
                                      2: torch.export.Dim("height"),
                                      3: torch.export.Dim("width")}}
        names = ["rainy"]
        if mode == "gated":
            channels = self._plain.config.width  # the SE block's channels
            args += (torch.rand(stages, 1, channels),)
            dims["extra"] = {1: dims["x"][0]}
            names.append("gates")
        elif mode == "stats":
            args += (torch.rand(64, 48),)
            dims["extra"] = {0: dims["x"][2], 1: dims["x"][3]}
            names.append("weight")
        return onnx_export(graph, args, path, input_names=names, dynamic_shapes=dims)

    def _runner(self, mode: str, stages: int) -> Any:
        """A callable ``(*numpy inputs) -> list of numpy outputs`` for one variant."""
        key = (mode, stages)
        if key not in self._runners:
            path = str(self._graph(mode, stages))
            if self.backend == "onnxruntime":
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                names = [i.name for i in session.get_inputs()]
                self._runners[key] = lambda *a: session.run(None, dict(zip(names, a)))
            else:
                import openvino as ov

                compiled = ov.Core().compile_model(path, "CPU", {
                    "INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32",
                    "PERFORMANCE_HINT": "LATENCY"})
                request = compiled.create_infer_request()
                self._runners[key] = lambda *a: list(request.infer(list(a)).values())
        return self._runners[key]

    def run_stages(self, x: torch.Tensor, gates: list[torch.Tensor] | None = None,
                   stat_weight: torch.Tensor | None = None, stages: int | None = None
                   ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor] | None]]:
        """As :meth:`sdsen.models.SDSEN.run_stages` (float32 on the CPU); with ``stat_weight``
        only the statistics are computed (the rain list is empty)."""
        n = self._plain._n_stages(stages)
        x_np = x.detach().float().cpu().numpy()
        if stat_weight is not None and self.config.se:
            sums, counts = self._runner("stats", n)(
                x_np, stat_weight.detach().float().cpu().numpy())
            sums, counts = torch.from_numpy(sums), torch.from_numpy(counts)
            return [], [(sums[t], counts[t]) for t in range(n)]
        if gates is not None:
            g = torch.stack([gt.expand(x.shape[0], -1) for gt in gates])  # (T, B, C)
            out = self._runner("gated", n)(x_np, g.float().numpy())[0]
        else:
            out = self._runner("rains", n)(x_np)[0]
        return list(torch.from_numpy(out).unbind(0)), [None] * n
