"""The AIM 2022 Reversed ISP challenge metric (mv-lab/AISP scoring/evaluation.py).

Both metrics take packed bayer arrays (H, W, 4) in scoring units (stored / 1024, the scorer's
`np.load(f) / 1024.` for every track; `SensorSpec.to_scoring_units`). PSNR is 10 log10(1 / MSE)
over the whole array (999 when MSE is 0).

SSIM is what the scorer really computes: it imports skimage's SSIM and then overrides it with
`from myssim import compare_ssim as ssim` (skimage 0.14's `compare_ssim`), called per channel
with `gaussian_weights=True, use_sample_covariance=False` and no data_range:
- the window is `scipy.ndimage.gaussian_filter(x, sigma=1.5)` at scipy's default truncate 4.0,
  a 13-tap Gaussian, with scipy's 'reflect' boundary (d c b a | a b c d);
- data_range comes from the dtype, and float64 maps to (-1, 1): data_range 2, so
  C1 = (0.01 * 2)^2 and C2 = (0.03 * 2)^2;
- the SSIM map is averaged after cropping (11 - 1) // 2 = 5 px on each side;
- the 4 channels are averaged.
`skimage_ssim` is the variant some papers report: skimage's `structural_similarity(...,
gaussian_weights=True, use_sample_covariance=False, data_range=1)`, an 11-tap window (truncate
3.5), same 5 px crop. On real pairs the two differ by far more than the gaps between methods.

The NumPy functions are the reference (float64, as the scorer); the TF ones are for
training-time monitoring and agree with them to 1e-4. PSNR over an empty set of samples (an
all-zero `weights`) is NaN in both.
"""

from __future__ import annotations

import numpy as np

SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_CROP = 5  # (win_size 11 - 1) // 2 in both scorers, whatever the filter's own radius
SSIM_MIN_SIZE = 11  # compare_ssim refuses images smaller than its 11 px win_size
SCORER_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default: radius 6, 13 taps
SCORER_DATA_RANGE = 2.0  # skimage 0.14 dtype_range[float64] = (-1, 1)
SKIMAGE_TRUNCATE = 3.5  # skimage >= 0.16 structural_similarity: radius 5, 11 taps
SKIMAGE_DATA_RANGE = 1.0
PSNR_IDENTICAL = 999.0  # what the scorer reports for MSE == 0


def gaussian_window(truncate: float = SCORER_TRUNCATE) -> np.ndarray:
    """Normalised 1-D Gaussian (sigma 1.5) of radius int(truncate * sigma + 0.5), as scipy builds it."""
    radius = int(truncate * SSIM_SIGMA + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / SSIM_SIGMA) ** 2)
    return w / w.sum()


def _check_pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"expected two (H, W, C) arrays of the same shape, got {p.shape} and {t.shape}")
    return p, t


def challenge_psnr(pred, target, weights=None) -> float:
    """PSNR in dB of `pred` against `target`; `weights` (same shape, 0/1) restricts it to some samples (NaN if none)."""
    p, t = _check_pair(pred, target)
    se = (p - t) ** 2
    if weights is None:
        mse = se.mean()
    else:
        w = np.broadcast_to(np.asarray(weights, np.float64), se.shape)
        if w.sum() == 0:
            return float("nan")
        mse = (se * w).sum() / w.sum()
    return PSNR_IDENTICAL if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def _blur(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable correlation of a 2-D array with `w`, rows then columns, scipy 'reflect' boundary."""
    r = len(w) // 2
    x = np.pad(x, r, mode="symmetric")  # NumPy's 'symmetric' is scipy.ndimage's 'reflect'
    h, wd = x.shape[0] - 2 * r, x.shape[1] - 2 * r
    rows = sum(w[i] * x[i : i + h, :] for i in range(len(w)))
    return sum(w[j] * rows[:, j : j + wd] for j in range(len(w)))


def _mean_ssim(pred, target, truncate: float, data_range: float) -> float:
    p, t = _check_pair(pred, target)
    if min(p.shape[:2]) < SSIM_MIN_SIZE:
        raise ValueError(f"SSIM needs at least {SSIM_MIN_SIZE}x{SSIM_MIN_SIZE} samples per channel, got {p.shape[:2]}")
    w = gaussian_window(truncate)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    crop = (slice(SSIM_CROP, -SSIM_CROP),) * 2
    scores = []
    for ch in range(p.shape[-1]):
        x, y = p[..., ch], t[..., ch]
        ux, uy = _blur(x, w), _blur(y, w)
        vx = _blur(x * x, w) - ux * ux
        vy = _blur(y * y, w) - uy * uy
        vxy = _blur(x * y, w) - ux * uy
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        scores.append(s[crop].mean())
    return float(np.mean(scores))


def challenge_ssim(pred, target) -> float:
    """SSIM as the AIM 2022 scorer computes it (myssim: 13-tap Gaussian, data_range 2, 5 px crop, mean of channels)."""
    return _mean_ssim(pred, target, SCORER_TRUNCATE, SCORER_DATA_RANGE)


def skimage_ssim(pred, target) -> float:
    """SSIM as current skimage computes it with data_range 1 (11-tap Gaussian), mean of channels: not the scorer's."""
    return _mean_ssim(pred, target, SKIMAGE_TRUNCATE, SKIMAGE_DATA_RANGE)
