"""sdsen.metrics against scikit-image and MATLAB's rgb2ycbcr formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sdsen.metrics import PROTOCOLS, psnr, psnr_ssim, quantize_8bit, rgb_to_y, ssim

TOL = {torch.float32: 1e-4, torch.float64: 1e-8}


def _sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None) -> float:
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=channel_axis,
    )


def _reference(x: torch.Tensor, y: torch.Tensor, protocol: str) -> tuple[float, float]:
    """skimage PSNR / SSIM of one (3, H, W) pair in ``protocol``."""
    if protocol == "y":
        a = rgb_to_y(x.double())[0].numpy()
        b = rgb_to_y(y.double())[0].numpy()
        return peak_signal_noise_ratio(a, b, data_range=1), _sk_ssim(a, b, None)
    a = x.double().permute(1, 2, 0).numpy()
    b = y.double().permute(1, 2, 0).numpy()
    return peak_signal_noise_ratio(a, b, data_range=1), _sk_ssim(a, b, -1)


def _natural_pair() -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(skdata.astronaut()[40:141, 100:177].copy()).permute(2, 0, 1) / 255.0
    g = torch.Generator().manual_seed(1)
    noisy = quantize_8bit(img + 0.06 * torch.randn(img.shape, generator=g))
    return img.float(), noisy.float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_batched_random_matches_skimage(dtype: torch.dtype, protocol: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 23, 37, generator=g, dtype=dtype)  # odd, non-square
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=dtype)).clamp(0, 1)
    p, s = psnr_ssim(x, y, protocol)
    assert p.shape == s.shape == (3,)
    assert p.dtype == dtype
    for i in range(3):
        ref_p, ref_s = _reference(x[i], y[i], protocol)
        assert abs(float(p[i]) - ref_p) < TOL[dtype], (i, float(p[i]), ref_p)
        assert abs(float(s[i]) - ref_s) < TOL[dtype], (i, float(s[i]), ref_s)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_natural_image_matches_skimage(protocol: str) -> None:
    clean, noisy = _natural_pair()  # 101 x 77
    ref_p, ref_s = _reference(noisy, clean, protocol)
    assert psnr(noisy, clean, protocol).shape == ()
    assert abs(float(psnr(noisy, clean, protocol)) - ref_p) < 1e-4
    assert abs(float(ssim(noisy, clean, protocol)) - ref_s) < 1e-4


def test_y_protocol_scores_higher_than_rgb_on_colour_noise() -> None:
    clean, noisy = _natural_pair()
    assert float(psnr(noisy, clean, "y")) > float(psnr(noisy, clean, "rgb"))


def test_rgb_to_y_matlab_known_values() -> None:
    white, black = torch.ones(3, 1, 1), torch.zeros(3, 1, 1)
    assert torch.allclose(rgb_to_y(white), torch.tensor(235 / 255), atol=1e-6)
    assert torch.allclose(rgb_to_y(black), torch.tensor(16 / 255), atol=1e-7)
    # MATLAB rgb2ycbcr on uint8 [255, 0, 0] gives Y = 81 (16 + 65.481 = 81.481, rounded)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert abs(float(rgb_to_y(red)) * 255 - 81.481) < 1e-4
    grey = torch.full((2, 3, 4, 5), 0.5)
    expected = (16 + 0.5 * (65.481 + 128.553 + 24.966)) / 255
    out = rgb_to_y(grey)
    assert out.shape == (2, 1, 4, 5)
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)


def test_quantize_8bit_truncates_and_clamps() -> None:
    x = torch.tensor([-0.5, 0.0, 0.49999, 0.99999, 1.0, 2.0, 100.7 / 255])
    q = quantize_8bit(x)
    expected = torch.tensor([0, 0, 127, 254, 255, 255, 100]) / 255.0
    assert torch.allclose(q, expected, atol=0)
    grid = torch.arange(256, dtype=torch.float32) / 255
    assert torch.equal(quantize_8bit(grid), grid)  # 8-bit values are fixed points
    # same as PReNet's np.uint8(255 * clamp(out))
    g = torch.Generator().manual_seed(3)
    r = torch.rand(1000, generator=g) * 1.2 - 0.1
    ref = np.uint8(255 * np.clip(r.numpy(), 0, 1)).astype(np.float32) / 255
    assert np.array_equal(quantize_8bit(r).numpy(), ref)


def test_identical_images() -> None:
    x = torch.rand(2, 3, 16, 19)
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x, "y"), torch.ones(2))


def test_errors() -> None:
    x = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="protocol"):
        psnr(x, x, "lab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        ssim(x, torch.rand(3, 16, 17))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(3, 8, 30), torch.rand(3, 8, 30))
