"""Interactive panels (ipywidgets) that degrade to nothing without a widget frontend.

Each panel redraws a figure from a plotting function when a slider moves. Notebooks always draw
the static figure with the default values too, so a headless run (CI, nbconvert, GitHub's
viewer) still shows and saves it; the panel is created only when ipywidgets imports.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..data.io import to_tensor
from .images import as_hwc

__all__ = ["rain_panel", "slider_panel", "widgets_available"]

#: ``(min, max, step, value)`` of a slider; ints give an ``IntSlider``, else a ``FloatSlider``.
SliderSpec = tuple[float, float, float, float]


def widgets_available() -> bool:
    """Whether ipywidgets can be imported (a frontend may still be missing)."""
    return importlib.util.find_spec("ipywidgets") is not None


def slider_panel(
    draw: Callable[..., Figure], sliders: Mapping[str, SliderSpec], **fixed: Any
) -> Any:
    """A panel of sliders that calls ``draw(**values, **fixed)`` and shows its figure.

    The figure is shown as a PNG in an ``ipywidgets.Image``, not through an ``Output`` widget:
    executing an ``Output`` widget headless makes nbclient answer on the kernel's shell channel
    while it waits there for the cell's reply, which intermittently hangs ``jupyter nbconvert
    --execute`` (jupyter/nbclient#312).

    Parameters
    ----------
    draw
        Returns a matplotlib figure for keyword values (the panel closes it after rendering).
    sliders
        ``{name: (min, max, step, value)}``.
    **fixed
        Extra keyword arguments passed to ``draw`` unchanged.

    Returns
    -------
    ipywidgets.VBox or None
        The panel (display it as a cell's last expression): a row of sliders above the image; or
        ``None`` when ipywidgets is not installed.
    """
    if not widgets_available():
        return None
    import ipywidgets as w
    import matplotlib.pyplot as plt

    controls = {}
    for name, (lo, hi, step, value) in sliders.items():
        is_int = all(isinstance(v, int) for v in (lo, hi, step, value))
        cls = w.IntSlider if is_int else w.FloatSlider
        controls[name] = cls(
            min=lo, max=hi, step=step, value=value, description=name, continuous_update=False
        )

    def render() -> bytes:
        fig = draw(**{k: c.value for k, c in controls.items()}, **fixed)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi)
        plt.close(fig)
        return buf.getvalue()

    image = w.Image(value=render(), format="png")

    def update(change: dict[str, Any]) -> None:
        image.value = render()

    for c in controls.values():
        c.observe(update, names="value")
    return w.VBox([w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap")), image])


def rain_panel(
    clean: np.ndarray | torch.Tensor, sliders: Mapping[str, SliderSpec], seed: int = 0
) -> Any:
    """Sliders for :func:`sdsen.rain.synthesize` showing ``B``, ``R`` and ``O = B + R``.

    Parameters
    ----------
    clean
        Background ``B``, ``(H, W, 3)`` array or ``(3, H, W)`` tensor in ``[0, 1]``.
    sliders
        ``{synthesize argument: (min, max, step, value)}``, e.g. ``angle``, ``length``,
        ``density``, ``intensity``, ``layers``.
    seed
        Seed of the streaks.

    Returns
    -------
    ipywidgets.VBox or None
        See :func:`slider_panel`.
    """
    from sdsen.rain import synthesize

    from .rain import rain_decomposition

    b = to_tensor(as_hwc(clean))

    def draw(**params: Any) -> Figure:
        s = synthesize(b, seed=seed, **params)
        return rain_decomposition(s.rainy, s.clean, s.rain)

    return slider_panel(draw, sliders)
