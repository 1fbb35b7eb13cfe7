"""The AIM 2022 scorer (mv-lab/AISP scoring/evaluation.py + myssim.py), written from that code, not from revisp_tf."""

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity


def load(path) -> np.ndarray:
    """How the scorer reads every track's .npy: `np.load(f) / 1024.`"""
    return np.load(path) / 1024.0


def psnr(ref, res) -> float:
    return float(10 * np.log10(1.0 / np.mean((ref - res) ** 2)))


def ssim(ref, res) -> float:
    """myssim.compare_ssim(gaussian_weights=True, use_sample_covariance=False) per channel, mean of channels.

    scipy's gaussian_filter(sigma=1.5) at its default truncate (13 taps, 'reflect' boundary),
    population covariance, float64 data_range 2, the map's mean after a 5 px crop.
    """
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    out = []
    for i in range(ref.shape[-1]):
        x, y = ref[..., i].astype(np.float64), res[..., i].astype(np.float64)
        ux, uy = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
        vx = gaussian_filter(x * x, 1.5) - ux * ux
        vy = gaussian_filter(y * y, 1.5) - uy * uy
        vxy = gaussian_filter(x * y, 1.5) - ux * uy
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        out.append(s[5:-5, 5:-5].mean())
    return float(np.mean(out))


def skimage_ssim(ref, res) -> float:
    """skimage's own structural_similarity with data_range 1 (what some papers report), mean of channels."""
    return float(np.mean([
        structural_similarity(ref[..., i], res[..., i], gaussian_weights=True, use_sample_covariance=False, data_range=1)
        for i in range(ref.shape[-1])
    ]))
