"""MS-SSIM-L1 (Zhao et al. 2017) as the authors' public PyTorch code computes it.

The authors train with the widely copied `MS_SSIM_L1_LOSS` (psyrocloud/MS-SSIM_L1_LOSS,
copied into SenseBrainTech/overexposure-mask-reverse-ISP tools/loss.py): no downsampling;
every scale is a full-resolution Gaussian blur (33-tap window, zero 'same' padding), the
luminance term comes from the last scale, the contrast-structure terms of all scales are
multiplied, and the result is mixed with a Gaussian-weighted L1:
`compensation * (alpha * (1 - lM * PIcs) + (1 - alpha) * gaussian_l1 / data_range)`.
No fractional powers are taken, so it works at any image size and its gradient stays
finite for anti-correlated or constant images (unlike `tf.image.ssim_multiscale`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.checks import check_choice
from revisp_tf.isp._checks import as_float_tensor
from revisp_tf.losses._reduction import check_reduction, reduce_loss

SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)
K1, K2 = 0.01, 0.03
ALPHA = 0.025  # the authors' weight of the MS-SSIM term (Zhao et al. use 0.84)
COMPENSATION = 200.0
LAYOUTS = ("authors", "per_channel")
# Taps below this fraction of the peak change no float32 sum; dropping them saves work at small sigmas.
_TAP_FLOOR = 1e-12


def gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian of `size` taps centred on tap size // 2 (float64)."""
    coords = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _trimmed(taps: np.ndarray) -> np.ndarray:
    """Drops the negligible outer taps symmetrically, keeping an odd length."""
    centre = len(taps) // 2
    radius = centre - int(np.argmax(taps >= _TAP_FLOOR * taps.max()))
    return taps[centre - radius : centre + radius + 1]


def scale_maps(n_channels: int, n_sigmas: int, layout: str = "authors") -> list[tuple[int, int]]:
    """(channel, sigma index) of each SSIM map, in the order the loss multiplies them.

    "authors": PyTorch `conv2d(groups=3)` feeds output map o from input channel o // S,
    but the authors' masks give map o the sigma o // 3 (their comment says "r0,g0,b0,r1,…"),
    so for S = 5 the maps are R at sigmas .5,.5,.5,1,1; G at 1,2,2,2,4; B at 4,4,8,8,8, and
    the luminance term is the blue channel's at sigma 8, cubed. "per_channel": every
    channel at every sigma (what that comment intended), channel fastest.
    """
    check_choice("MS-SSIM layout", layout, LAYOUTS)
    if layout == "authors":
        if n_channels != 3:
            raise ValueError(f"layout 'authors' is defined for 3-channel images only, got {n_channels} channels")
        return [(o // n_sigmas, o // 3) for o in range(3 * n_sigmas)]
    return [(o % n_channels, o // n_channels) for o in range(n_channels * n_sigmas)]


def _blur(stack, taps: np.ndarray):
    """Separable Gaussian blur of every channel of (N, H, W, D), zero padding, same size."""
    depth = stack.shape[-1]
    k = tf.constant(np.tile(taps.astype(np.float32).reshape(-1, 1, 1, 1), (1, 1, depth, 1)))
    out = tf.nn.depthwise_conv2d(stack, k, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(out, tf.reshape(k, (1, -1, depth, 1)), [1, 1, 1, 1], "SAME")


def _check_args(x, y, sigmas, data_range) -> None:
    if x.shape[-1] is None:
        raise ValueError("ms_ssim_l1: the channel axis must have a static size")
    if x.shape.is_fully_defined() and y.shape.is_fully_defined() and x.shape != y.shape:
        raise ValueError(f"ms_ssim_l1: pred and target shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not sigmas or min(sigmas) <= 0:
        raise ValueError(f"ms_ssim_l1: expected positive sigmas, got {tuple(sigmas)}")
    if data_range <= 0:
        raise ValueError(f"ms_ssim_l1: expected data_range > 0, got {data_range}")


def _moments(x, y, maps, sigmas, size):
    """Blurred (mu_x, mu_y, E[x^2], E[y^2], E[xy]) per (channel, sigma) and blurred |x - y| per channel."""
    # Whole-axis unstack/stack (not per-map slicing) keeps the backward pass cheap.
    xc, yc = tf.unstack(x, axis=-1), tf.unstack(y, axis=-1)
    last = len(sigmas) - 1
    moments, blurred_l1 = {}, None
    for s in sorted({s for _, s in maps}):
        chans = sorted({c for c, si in maps if si == s})
        parts = [p for c in chans for p in (xc[c], yc[c], xc[c] * xc[c], yc[c] * yc[c], xc[c] * yc[c])]
        if s == last:
            parts += [tf.abs(a - b) for a, b in zip(xc, yc)]
        out = tf.unstack(_blur(tf.stack(parts, axis=-1), _trimmed(gaussian_taps(size, sigmas[s]))), axis=-1)
        for i, c in enumerate(chans):
            moments[(c, s)] = out[5 * i : 5 * i + 5]
        if s == last:
            blurred_l1 = out[5 * len(chans) :]
    return moments, blurred_l1


def ms_ssim_l1(
    pred,
    target,
    alpha: float = ALPHA,
    compensation: float = COMPENSATION,
    sigmas=SIGMAS,
    data_range: float = 1.0,
    layout: str = "authors",
    reduction: str = "mean",
):
    """MS-SSIM-L1 loss of (…, H, W, C) images: scalar mean, or per-example (N,) with reduction="none".

    `layout="authors"` reproduces the authors' PyTorch loss exactly (see `scale_maps`);
    `"per_channel"` is the textbook variant that works for any channel count.
    """
    check_reduction(reduction)
    x, rank = as_float_tensor(pred, "pred", check_range=False)
    y, _ = as_float_tensor(target, "target", check_range=False)
    sigmas = tuple(float(s) for s in sigmas)
    _check_args(x, y, sigmas, data_range)
    maps = scale_maps(x.shape[-1], len(sigmas), layout)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    moments, blurred_l1 = _moments(x, y, maps, sigmas, int(4 * sigmas[-1] + 1))

    cs = {}
    for key, (mux, muy, exx, eyy, exy) in moments.items():
        # Variances cannot be negative; clamping only removes float32 cancellation error.
        var_x = tf.maximum(exx - mux * mux, 0.0)
        var_y = tf.maximum(eyy - muy * muy, 0.0)
        cs[key] = (2.0 * (exy - mux * muy) + c2) / (var_x + var_y + c2)
    # Luminance of the last C maps (the authors' l[:, -1] * l[:, -2] * l[:, -3]).
    l_m = tf.ones_like(blurred_l1[0])
    for key in maps[-x.shape[-1] :]:
        mux, muy = moments[key][:2]
        l_m = l_m * (2.0 * mux * muy + c1) / (mux * mux + muy * muy + c1)
    # Plain products, no fractional powers: negative cs (anti-correlation) cannot make NaN.
    pi_cs = tf.ones_like(l_m)
    for key in maps:
        pi_cs = pi_cs * cs[key]
    gaussian_l1 = tf.add_n(blurred_l1) / len(blurred_l1)
    loss_map = compensation * (alpha * (1.0 - l_m * pi_cs) + (1.0 - alpha) * gaussian_l1 / data_range)
    return reduce_loss(tf.reduce_mean(loss_map, axis=[1, 2]), reduction, rank)
