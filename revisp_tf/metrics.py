"""The AIM 2022 Reversed ISP challenge metric (mv-lab/AISP scoring/evaluation.py).

Both metrics take packed bayer arrays (H, W, 4) in model units (stored / normaliser, the
scorer's `np.load(f) / 1024.`). PSNR is 10 log10(1 / MSE) over the whole array. SSIM is the
mean over the 4 channels of skimage's `structural_similarity(gaussian_weights=True,
use_sample_covariance=False, data_range=1)`: an 11-tap Gaussian window (sigma 1.5, truncated
at 3.5 sigma), K1 0.01, K2 0.03, averaged over the map with a 5 px border cropped, which is
what a 'valid' convolution with that window gives.

The NumPy functions are the reference (float64, as the scorer); the TF ones are for
training-time monitoring and agree with them to 1e-4.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # skimage's default truncation of the Gaussian window
SSIM_K1, SSIM_K2 = 0.01, 0.03
PSNR_IDENTICAL = 999.0  # what the scorer reports for MSE == 0


def ssim_window() -> np.ndarray:
    """The normalised 1-D Gaussian window skimage uses (11 taps for sigma 1.5)."""
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / SSIM_SIGMA) ** 2)
    return w / w.sum()


def _check_pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"expected two (H, W, C) arrays of the same shape, got {p.shape} and {t.shape}")
    return p, t


def challenge_psnr(pred, target, weights=None) -> float:
    """PSNR in dB of `pred` against `target`; `weights` (same shape, 0/1) restricts it to some samples."""
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


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D array with the 1-D window `w`."""
    k = len(w)
    rows = sum(w[i] * x[i : x.shape[0] - k + 1 + i, :] for i in range(k))
    return sum(w[j] * rows[:, j : rows.shape[1] - k + 1 + j] for j in range(k))


def challenge_ssim(pred, target) -> float:
    """SSIM as the challenge scorer computes it: mean over channels, data range 1."""
    p, t = _check_pair(pred, target)
    w = ssim_window()
    if min(p.shape[:2]) < len(w):
        raise ValueError(f"SSIM needs at least {len(w)}x{len(w)} samples per channel, got {p.shape[:2]}")
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    scores = []
    for ch in range(p.shape[-1]):
        x, y = p[..., ch], t[..., ch]
        ux, uy = _filter_valid(x, w), _filter_valid(y, w)
        vx = _filter_valid(x * x, w) - ux * ux
        vy = _filter_valid(y * y, w) - uy * uy
        vxy = _filter_valid(x * y, w) - ux * uy
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        scores.append(s.mean())
    return float(np.mean(scores))


def psnr(pred, target, weights=None):
    """Per-example PSNR (N,) in TF for (N, H, W, C) batches; optional 0/1 `weights`."""
    p, t = tf.cast(pred, tf.float32), tf.cast(target, tf.float32)
    se = tf.square(p - t)
    if weights is None:
        mse = tf.reduce_mean(se, axis=[1, 2, 3])
    else:
        w = tf.broadcast_to(tf.cast(weights, tf.float32), tf.shape(se))
        mse = tf.math.divide_no_nan(tf.reduce_sum(se * w, axis=[1, 2, 3]), tf.reduce_sum(w, axis=[1, 2, 3]))
    return tf.where(mse > 0, 10.0 * tf.math.log(1.0 / mse) / tf.math.log(10.0), PSNR_IDENTICAL)


def ssim(pred, target):
    """Per-example challenge SSIM (N,) in TF for (N, H, W, C) batches."""
    p, t = tf.cast(pred, tf.float32), tf.cast(target, tf.float32)
    channels = p.shape[-1]
    w = tf.constant(ssim_window(), tf.float32)
    kv = tf.tile(tf.reshape(w, [-1, 1, 1, 1]), [1, 1, channels, 1])
    kh = tf.tile(tf.reshape(w, [1, -1, 1, 1]), [1, 1, channels, 1])

    def blur(z):
        z = tf.nn.depthwise_conv2d(z, kv, [1, 1, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(z, kh, [1, 1, 1, 1], "VALID")

    ux, uy = blur(p), blur(t)
    vx = blur(p * p) - ux * ux
    vy = blur(t * t) - uy * uy
    vxy = blur(p * t) - ux * uy
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return tf.reduce_mean(s, axis=[1, 2, 3])
