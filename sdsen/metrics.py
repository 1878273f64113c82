"""Image quality metrics: PSNR and SSIM in the two protocols of the deraining literature.

Two named protocols are reported side by side:

``'rgb'``
    PSNR from the mean squared error over all pixels and channels (as
    :func:`skimage.metrics.peak_signal_noise_ratio` on an ``(H, W, 3)`` image) and SSIM averaged
    over the three channels.
``'y'``
    Both metrics on the luma channel of MATLAB's ``rgb2ycbcr``:
    :math:`Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255` for RGB in ``[0, 1]``. This is
    the protocol of PReNet's published tables. It scores higher than ``'rgb'``: by about 1.4 dB
    on Rain100H, by several dB where the error is mostly in colour (up to about 4 dB for some
    shipped models on the built-in test photo).

SSIM follows Wang et al. (2004) as implemented by scikit-image with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False``: an 11 x 11 Gaussian window (sigma 1.5, truncated at
3.5 sigma), :math:`K_1 = 0.01`, :math:`K_2 = 0.03`, a dynamic range of 1, and the mean taken over
the *valid* region only (a border of 5 pixels is excluded). Both metrics are computed in float64
(float32 on Apple's MPS, which has no float64), so they match scikit-image to rounding, about
1e-12, whatever the input dtype.

A third SSIM, :func:`ssim_official`, is the one the official SDSEN evaluation script reports
(zero-padded window, borders included); use it only to compare with the SDSEN paper's SSIM.

.. warning::
   Published numbers are computed on 8-bit images. Quantize network outputs with
   :func:`quantize_8bit` (clamp to ``[0, 1]``, then *truncate* to 8 bits, as PReNet's test script
   does with ``np.uint8(255 * out)``) before scoring, in both protocols.

All functions are batched torch code that runs on any device and accepts ``(3, H, W)`` or
``(B, 3, H, W)`` tensors (channels first) with values in ``[0, 1]``; ``uint8`` tensors are read as
8-bit images (divided by 255, as scikit-image infers a data range of 255 for them). The ``'rgb'``
protocol also takes one-channel (grey) images. NaN values propagate to the score.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "PROTOCOLS",
    "SSIM_WINDOW",
    "Protocol",
    "gaussian_window",
    "psnr",
    "psnr_ssim",
    "quantize_8bit",
    "rgb_to_y",
    "score_image",
    "ssim",
    "ssim_official",
]

Protocol = Literal["rgb", "y"]
PROTOCOLS: tuple[str, ...] = ("rgb", "y")

_K1 = 0.01
_K2 = 0.03
_WIN_SIGMA = 1.5
#: Side of SSIM's Gaussian window; images must be at least this large (skimage: 2 * int(3.5
#: * sigma + 0.5) + 1, truncate 3.5).
SSIM_WINDOW = 11


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown metric protocol {protocol!r}; expected one of {PROTOCOLS}")


def _as_batch(x: torch.Tensor, name: str, protocol: str) -> tuple[torch.Tensor, bool]:
    """Return image(s) ``x`` as ``(B, C, H, W)`` float64 (float32 on MPS) and whether a batch
    axis was added."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (3, H, W) or (B, 3, H, W), got "
            f"{type(x).__name__}; for an (H, W, 3) NumPy image pass "
            f"torch.from_numpy(image).permute(2, 0, 1)"
        )
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise TypeError(
            f"{name} has dtype {x.dtype}; pass float images in [0, 1] (or uint8 8-bit images), "
            f"e.g. {name}.float() / 255 for 8-bit values"
        )
    if x.dim() not in (3, 4):
        raise ValueError(
            f"{name} must have shape (C, H, W) or (B, C, H, W), got {tuple(x.shape)}"
            + ("; add a channel axis with x[None]" if x.dim() == 2 else "")
        )
    channels = (1, 3) if protocol == "rgb" else (3,)
    if x.shape[-3] not in channels:
        hint = (
            "; for channels-last (H, W, 3) images pass x.permute(2, 0, 1)"
            if x.shape[-1] in channels
            else ""
        )
        wanted = "3 (RGB) or 1 (grey)" if protocol == "rgb" else "3 (RGB)"
        raise ValueError(
            f"{name} must be channels-first with {wanted} channels for protocol {protocol!r}, got "
            f"shape {tuple(x.shape)}{hint}"
        )
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    xf = x.to(dtype) / 255.0 if x.dtype == torch.uint8 else x.to(dtype)
    return (xf.unsqueeze(0), True) if x.dim() == 3 else (xf, False)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma channel of MATLAB's ``rgb2ycbcr`` for RGB images in ``[0, 1]``.

    :math:`Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`, so white maps to
    ``235/255`` and black to ``16/255``.

    Parameters
    ----------
    x : torch.Tensor
        RGB images of shape ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        Y channel of shape ``(..., 1, H, W)`` in ``[16/255, 235/255]``.

    Examples
    --------
    >>> import torch
    >>> y = rgb_to_y(torch.ones(3, 2, 2))
    >>> round(float(y[0, 0, 0]) * 255, 4)
    235.0
    """
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects (..., 3, H, W) RGB images, got {tuple(x.shape)}")
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Clamp to ``[0, 1]`` and truncate to 8 bits, as the published test scripts save outputs.

    Computes ``floor(255 * clamp(x, 0, 1)) / 255`` (NumPy's ``np.uint8(255 * x)`` truncates, it
    does not round). Values that are already exact multiples of 1/255 are unchanged.

    Parameters
    ----------
    x : torch.Tensor
        Images of any shape, nominally in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        Same shape and dtype, on the 8-bit grid ``{0, 1/255, ..., 1}``.

    Examples
    --------
    >>> import torch
    >>> quantize_8bit(torch.tensor([-0.2, 0.5, 1.3])) * 255
    tensor([  0., 127., 255.])
    """
    return torch.floor(x.clamp(0.0, 1.0) * 255.0) / 255.0


def _prepare(
    x: torch.Tensor, y: torch.Tensor, protocol: str
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    _check_protocol(protocol)
    xb, squeezed = _as_batch(x, "x", protocol)
    yb, _ = _as_batch(y, "y", protocol)
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}; "
            f"compare an estimate with the clean image it belongs to"
        )
    if protocol == "y":
        xb, yb = rgb_to_y(xb), rgb_to_y(yb)
    return xb, yb, squeezed


def psnr(x: torch.Tensor, y: torch.Tensor, protocol: Protocol = "rgb") -> torch.Tensor:
    """Peak signal-to-noise ratio with peak 1, per image.

    :math:`\\mathrm{PSNR} = 10 \\log_{10}(1 / \\mathrm{MSE})`, the MSE taken over all pixels and
    channels of each image (for ``'y'``, over the Y channel). Identical images give ``inf``.

    Parameters
    ----------
    x, y : torch.Tensor
        Images of shape ``(3, H, W)`` or ``(B, 3, H, W)`` in ``[0, 1]`` (or ``uint8``).
    protocol : {'rgb', 'y'}
        Colour protocol (see the module docstring).

    Returns
    -------
    torch.Tensor
        Shape ``()`` for a single image or ``(B,)`` for a batch, float64 (float32 on MPS).

    Examples
    --------
    >>> import torch
    >>> a = torch.zeros(3, 8, 8); b = torch.full((3, 8, 8), 0.1)
    >>> round(float(psnr(a, b)), 4)
    20.0
    """
    xb, yb, squeezed = _prepare(x, y, protocol)
    mse = (xb - yb).pow(2).flatten(1).mean(dim=1)
    out = 10.0 * torch.log10(1.0 / mse)
    return out[0] if squeezed else out


def gaussian_window(
    size: int = SSIM_WINDOW,
    sigma: float = _WIN_SIGMA,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian window, as ``scipy.ndimage.gaussian_filter`` builds it.

    Parameters
    ----------
    size : int
        Odd window length (11 for SSIM).
    sigma : float
        Standard deviation in pixels (1.5 for SSIM).

    Returns
    -------
    torch.Tensor
        Shape ``(size,)``, summing to 1.
    """
    if size % 2 != 1:
        raise ValueError(f"window size must be odd, got {size}")
    r = size // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return (w / w.sum()).to(dtype=dtype, device=device)


def _gaussian_filter(x: torch.Tensor, win: torch.Tensor, same: bool) -> torch.Tensor:
    """Separable depthwise Gaussian filter over ``(B, C, H, W)``: the valid region only, or the
    same size with zero padding (``same``)."""
    c = x.shape[1]
    k = win.numel()
    pad = k // 2 if same else 0
    wh = win.view(1, 1, k, 1).expand(c, 1, k, 1)
    ww = win.view(1, 1, 1, k).expand(c, 1, 1, k)
    return F.conv2d(F.conv2d(x, wh, padding=(pad, 0), groups=c), ww, padding=(0, pad), groups=c)


def _ssim_map(xb: torch.Tensor, yb: torch.Tensor, same: bool = False) -> torch.Tensor:
    """SSIM map ``(B, C, H', W')``: the valid region (skimage) or zero-padded ``same`` size."""
    win = gaussian_window(dtype=xb.dtype, device=xb.device)
    # one pass over the five moments (stacked on the channel axis)
    c = xb.shape[1]
    stack = torch.cat([xb, yb, xb * xb, yb * yb, xb * yb], dim=1)
    mu_x, mu_y, e_xx, e_yy, e_xy = _gaussian_filter(stack, win, same).split(c, dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    c1, c2 = _K1**2, _K2**2  # data range 1
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def _ssim_per_channel(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image and channel over the valid region, shape ``(B, C)``."""
    h, w = xb.shape[-2:]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {h}x{w}")
    return _ssim_map(xb, yb).mean(dim=(-2, -1))


def ssim(x: torch.Tensor, y: torch.Tensor, protocol: Protocol = "rgb") -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, matching scikit-image.

    Equivalent to ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`` on each image:
    11 x 11 Gaussian window, :math:`K_1 = 0.01`, :math:`K_2 = 0.03`, mean over the valid region.
    For ``'rgb'`` the per-channel SSIMs are averaged.

    Parameters
    ----------
    x, y : torch.Tensor
        Images of shape ``(3, H, W)`` or ``(B, 3, H, W)`` in ``[0, 1]`` (or ``uint8``),
        ``H, W >= 11``.
    protocol : {'rgb', 'y'}
        Colour protocol (see the module docstring).

    Returns
    -------
    torch.Tensor
        Shape ``()`` for a single image or ``(B,)`` for a batch, float64 (float32 on MPS).

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(3, 16, 20)
    >>> float(ssim(a, a))
    1.0
    """
    xb, yb, squeezed = _prepare(x, y, protocol)
    out = _ssim_per_channel(xb, yb).mean(dim=1)
    return out[0] if squeezed else out


def psnr_ssim(
    x: torch.Tensor, y: torch.Tensor, protocol: Protocol = "rgb"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both metrics at once: ``(psnr(x, y, protocol), ssim(x, y, protocol))``.

    Parameters
    ----------
    x, y : torch.Tensor
        Images of shape ``(3, H, W)`` or ``(B, 3, H, W)`` in ``[0, 1]``.
    protocol : {'rgb', 'y'}
        Colour protocol.

    Returns
    -------
    tuple of torch.Tensor
        PSNR and SSIM, each of shape ``()`` or ``(B,)``.
    """
    return psnr(x, y, protocol), ssim(x, y, protocol)


def score_image(
    estimate: torch.Tensor,
    clean: torch.Tensor,
    protocols: tuple[str, ...] = PROTOCOLS,
    quantize: bool = True,
) -> dict[str, float]:
    """PSNR and SSIM of one estimate in each protocol: a row of :func:`sdsen.evaluate.evaluate`,
    one stage of :func:`sdsen.train.validate`.

    Parameters
    ----------
    estimate, clean : torch.Tensor
        ``(3, H, W)`` (or ``(1, 3, H, W)``) in [0, 1]; ``estimate`` is clamped to [0, 1] and,
        with ``quantize``, truncated to 8 bits (:func:`sdsen.metrics.quantize_8bit`) first.
    protocols : tuple of str
        Subset of ``('rgb', 'y')``.
    quantize : bool
        Score the 8-bit-truncated estimate, as published protocols do.

    Returns
    -------
    dict
        ``{"psnr_<p>": float, "ssim_<p>": float}`` for each protocol ``p``.

    Examples
    --------
    >>> clean = torch.full((3, 16, 16), 0.5)
    >>> scores = score_image(clean + 0.1, clean, ("rgb",), quantize=False)
    >>> round(scores["psnr_rgb"], 3), sorted(scores)
    (20.0, ['psnr_rgb', 'ssim_rgb'])
    """
    est = quantize_8bit(estimate) if quantize else estimate.clamp(0, 1)
    row: dict[str, float] = {}
    for p in protocols:
        row[f"psnr_{p}"] = float(psnr(est, clean, p))
        row[f"ssim_{p}"] = float(ssim(est, clean, p))
    return row


def ssim_official(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM as the official SDSEN evaluation script computes it (RESCAN's ``cal_ssim.SSIM``).

    The same Gaussian window and constants as :func:`ssim`, but the window is applied with zero
    padding ("same" size) and the SSIM map is averaged over *every* pixel, borders included,
    and over the channels. SDSEN's ``eval.py`` scores the float estimate ``O - R_t`` against the
    clean image in BGR order, unclamped and not quantized: channel order does not change this
    mean, clamping and quantizing are the caller's choice. Zero padding darkens the local means
    near the borders, which raises the score: about +0.007 on 256 x 512 street photos. Use it only
    to compare with the SSIM in the SDSEN paper / README (0.8492 on Rain100H); report
    :func:`ssim` otherwise.

    Parameters
    ----------
    x, y : torch.Tensor
        Images of shape ``(C, H, W)`` or ``(B, C, H, W)`` (C = 3 or 1) in ``[0, 1]`` (or
        ``uint8``), any size.

    Returns
    -------
    torch.Tensor
        Shape ``()`` for a single image or ``(B,)`` for a batch, float64 (float32 on MPS).

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(3, 16, 20)
    >>> float(ssim_official(a, a))
    1.0
    """
    xb, yb, squeezed = _prepare(x, y, "rgb")
    out = _ssim_map(xb, yb, same=True).mean(dim=(1, 2, 3))
    return out[0] if squeezed else out
