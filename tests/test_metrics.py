"""sdsen.metrics against scikit-image and MATLAB's rgb2ycbcr formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sdsen.metrics import (
    PROTOCOLS,
    psnr,
    psnr_ssim,
    quantize_8bit,
    rgb_to_y,
    ssim,
    ssim_official,
)

# metrics are computed in float64 whatever the input dtype, so float32 inputs match too
TOL = 1e-9


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
    """skimage PSNR / SSIM of one (3, H, W) pair in ``protocol`` (Y from skimage's rgb2ycbcr)."""
    a = x.double().permute(1, 2, 0).numpy()
    b = y.double().permute(1, 2, 0).numpy()
    if protocol == "y":  # skimage's Y is in [16, 235] for RGB in [0, 1]: range 255
        a, b = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
        ssim_y = structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        return peak_signal_noise_ratio(a, b, data_range=255), ssim_y
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
    assert p.dtype == s.dtype == torch.float64
    for i in range(3):
        ref_p, ref_s = _reference(x[i], y[i], protocol)
        assert abs(float(p[i]) - ref_p) < TOL, (i, float(p[i]), ref_p)
        assert abs(float(s[i]) - ref_s) < TOL, (i, float(s[i]), ref_s)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_natural_image_matches_skimage(protocol: str) -> None:
    clean, noisy = _natural_pair()  # 101 x 77
    ref_p, ref_s = _reference(noisy, clean, protocol)
    assert psnr(noisy, clean, protocol).shape == ()
    assert abs(float(psnr(noisy, clean, protocol)) - ref_p) < TOL
    assert abs(float(ssim(noisy, clean, protocol)) - ref_s) < TOL


def test_flat_image_with_tiny_noise_matches_skimage() -> None:
    """The case where float32 moments lose digits (variance of 1e-6 on a mean of 0.9)."""
    g = torch.Generator().manual_seed(2)
    clean = torch.full((3, 64, 64), 0.9)
    noisy = clean + 1e-3 * torch.randn(clean.shape, generator=g)
    for protocol in PROTOCOLS:
        ref_p, ref_s = _reference(noisy, clean, protocol)
        assert abs(float(psnr(noisy, clean, protocol)) - ref_p) < TOL
        assert abs(float(ssim(noisy, clean, protocol)) - ref_s) < TOL


def test_uint8_images_are_8bit_like_skimage() -> None:
    """skimage infers a data range of 255 for uint8; sdsen reads uint8 as value / 255."""
    clean, noisy = _natural_pair()
    a = (noisy * 255).round().to(torch.uint8)
    b = (clean * 255).round().to(torch.uint8)
    a_hwc, b_hwc = a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy()
    assert abs(float(psnr(a, b)) - peak_signal_noise_ratio(b_hwc, a_hwc)) < TOL
    ref = structural_similarity(
        a_hwc, b_hwc, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=-1,
    )
    assert abs(float(ssim(a, b)) - ref) < TOL
    assert float(psnr(a, b.double() / 255)) == float(psnr(a, b))  # uint8 mixes with float


def test_grey_images_in_rgb_protocol_match_skimage() -> None:
    clean, noisy = _natural_pair()
    a, b = noisy[1:2], clean[1:2]
    ref_s = _sk_ssim(a[0].double().numpy(), b[0].double().numpy(), None)
    assert abs(float(ssim(a, b)) - ref_s) < TOL
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels for protocol 'y'"):
        psnr(a, b, "y")


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
    assert torch.allclose(ssim(x, x, "y"), torch.ones(2, dtype=torch.float64))


def test_errors() -> None:
    x = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="protocol"):
        psnr(x, x, "lab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x and y must have the same shape"):
        ssim(x, torch.rand(3, 16, 17))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor.*permute\(2, 0, 1\)"):
        psnr(x.permute(1, 2, 0).numpy(), x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"y has dtype torch.int64.*y.float\(\) / 255"):
        psnr(x, (x * 255).long())
    with pytest.raises(ValueError, match=r"channels-first.*got shape \(16, 20, 3\).*permute"):
        ssim(torch.rand(16, 20, 3), torch.rand(16, 20, 3))
    with pytest.raises(ValueError, match="3 \\(RGB\\) or 1 \\(grey\\) channels"):
        psnr(torch.rand(4, 16, 16), torch.rand(4, 16, 16))  # RGBA
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(3, 8, 30), torch.rand(3, 8, 30))


def _zero_padded_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """RESCAN's cal_ssim written with scipy: Gaussian (sigma 1.5, 11 taps) with zero padding."""
    from scipy.ndimage import gaussian_filter

    def blur(t: np.ndarray) -> np.ndarray:
        return gaussian_filter(t, sigma=(0, 1.5, 1.5), mode="constant", cval=0.0, truncate=3.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(m.mean())


def test_ssim_official_is_rescans_zero_padded_full_mean() -> None:
    clean, noisy = _natural_pair()  # 101 x 77
    ref = _zero_padded_ssim(noisy.double().numpy(), clean.double().numpy())
    assert abs(float(ssim_official(noisy, clean)) - ref) < TOL
    # the borders count (zero padding): not the skimage-style valid-region mean
    assert float(ssim_official(noisy, clean)) != pytest.approx(float(ssim(noisy, clean)), abs=1e-3)
    batch = ssim_official(torch.stack([noisy, clean]), torch.stack([clean, clean]))
    assert batch.shape == (2,) and float(batch[1]) == 1.0
    small = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(4))  # any size
    ref_small = _zero_padded_ssim(small.double().numpy(), (small * 0.9).double().numpy())
    assert abs(float(ssim_official(small, small * 0.9)) - ref_small) < TOL
