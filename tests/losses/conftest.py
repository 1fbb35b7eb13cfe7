"""Loss-test fixtures: an independent float64 NumPy/SciPy reference of the authors' MS-SSIM-L1.

Follows the PyTorch code literally: 3*S full 2-D Gaussian masks of 4*sigma_max+1 taps,
three consecutive copies per sigma, applied by an emulated `conv2d(groups=G)` (output map o
reads input channel o // (maps per group)) with zero 'same' padding (FFT convolution).
"""

import numpy as np
import pytest
from scipy.signal import fftconvolve

SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def gauss_2d(size, sigma):
    c = np.arange(size) - size // 2
    g = np.exp(-(c**2) / (2.0 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def grouped_conv(img, masks, groups):
    """torch conv2d(img (H, W, Cin), masks, groups) with zero 'same' padding -> (H, W, len(masks))."""
    per_group = len(masks) // groups
    in_per_group = img.shape[-1] // groups
    assert in_per_group == 1
    return np.stack([fftconvolve(img[..., o // per_group], m, mode="same") for o, m in enumerate(masks)], -1)


def _np_ms_ssim_l1(x, y, alpha=0.025, compensation=200.0, sigmas=SIGMAS, data_range=1.0, layout="authors"):
    """Per-example (N,) loss of (N, H, W, C) arrays."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    size, s_count, c = int(4 * sigmas[-1] + 1), len(sigmas), x.shape[-1]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    if layout == "authors":
        masks = [gauss_2d(size, s) for s in sigmas for _ in range(3)]

        def conv(t):
            return grouped_conv(t, masks, groups=3)

        n_lum = 3
    else:  # every channel at every sigma, channel fastest, one group per map
        masks = [gauss_2d(size, sigmas[o // c]) for o in range(c * s_count)]

        def conv(t):
            return grouped_conv(np.tile(t, (1, 1, s_count)), masks, groups=c * s_count)

        n_lum = c
    out = []
    for a, b in zip(x, y):
        mux, muy = conv(a), conv(b)
        var_x, var_y = conv(a * a) - mux**2, conv(b * b) - muy**2
        cov = conv(a * b) - mux * muy
        lum = (2 * mux * muy + c1) / (mux**2 + muy**2 + c1)
        cs = (2 * cov + c2) / (var_x + var_y + c2)
        ms = 1 - np.prod(lum[..., -n_lum:], axis=-1) * np.prod(cs, axis=-1)
        last = [gauss_2d(size, sigmas[-1])] * c
        gl1 = grouped_conv(np.abs(a - b), last, groups=c).mean(-1)
        out.append((compensation * (alpha * ms + (1 - alpha) * gl1 / data_range)).mean())
    return np.array(out)


@pytest.fixture(scope="session")
def np_ms_ssim_l1():
    """The reference as a callable: per-example (N,) loss of (N, H, W, C) arrays."""
    return _np_ms_ssim_l1
