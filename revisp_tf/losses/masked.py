"""The paper's losses on masked regions: OE / NOE zeroing, gamma, eq. 3 and eq. 4 mixes.

Each net is trained only on its own pixels: the pixels it is not responsible for are set
to 0 in both prediction and ground truth before the loss (paper sec. 3.1, Fig. 3), so
their values cannot change the loss. Every function returns the batch mean, or the
per-example (N,) losses with `reduction="none"` (the trainer averages those over the
global batch).
"""

from __future__ import annotations

import tensorflow as tf

from revisp_tf.checks import check_choice
from revisp_tf.isp._checks import as_float_tensor, check_channels
from revisp_tf.isp.color import gamma as apply_gamma
from revisp_tf.losses._reduction import check_reduction, per_example_mean, reduce_loss
from revisp_tf.losses.msssim_l1 import ms_ssim_l1

REGIONS = ("oe", "noe")
# Paper eq. 3 / eq. 4: L = LPIPS + 0.05 * L2 + 0.75 * MS-SSIM-L1.
LPIPS_WEIGHT = 1.0
L2_WEIGHT = 0.05
MSSSIM_L1_WEIGHT = 0.75
P20_GAMMA = 1.0 / 3.6  # paper sec. 3.2 / eq. 4


def _check_region(region: str) -> str:
    check_choice("region", region, REGIONS)
    return region


def _check_gamma(g) -> None:
    if g is not None and not 0.0 < float(g) <= 1.0:
        raise ValueError(f"gamma must be in (0, 1] or None, got {g}")


def _pair(pred, gt):
    """Validates a (prediction, ground truth) pair -> (x, y, rank), both rank 4."""
    x, rank = as_float_tensor(pred, "prediction", check_range=False)
    y, _ = as_float_tensor(gt, "ground truth", check_range=False)
    if x.shape.is_fully_defined() and y.shape.is_fully_defined() and x.shape != y.shape:
        raise ValueError(f"prediction and ground truth shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    return x, y, rank


def region_weight(mask, region: str = "oe"):
    """(…, H, W, 1) overexposure mask -> the region's weight: mask for "oe", 1 - mask for "noe"."""
    m, _ = as_float_tensor(mask, "mask")
    check_channels(m, 1, "mask")
    return m if _check_region(region) == "oe" else 1.0 - m


def mask_region(x, mask, region: str = "oe"):
    """Zeroes the pixels of (…, H, W, C) `x` outside `region` ("oe": mask == 1, "noe": mask == 0)."""
    t, rank = as_float_tensor(x, "image", check_range=False)
    out = t * region_weight(mask, region)
    return out[0] if rank == 3 else out


def _prepared(pred, gt, mask, region, gamma):
    """Gamma (if any) then zeroing outside `region`; zeroing last keeps those pixels exactly 0."""
    _check_gamma(gamma)
    x, y, rank = _pair(pred, gt)
    if gamma is not None:
        x, y = apply_gamma(x, gamma), apply_gamma(y, gamma)
    if region is not None:
        w = region_weight(mask, region)
        x, y = x * w, y * w
    return x, y, rank


def _l2_per_example(x, y):
    return per_example_mean(tf.square(x - y))


def _lpips_per_example(lpips_fn, x, y):
    if lpips_fn is None:
        from revisp_tf.losses.lpips import (
            lpips_distance as lpips_fn,  # lazy: loads AlexNet weights
        )
    d = tf.cast(lpips_fn(x, y), tf.float32)  # float16 from an LPIPS net computing in mixed precision
    if d.shape.rank == 0:
        raise ValueError("lpips_fn must return per-example distances with a leading batch axis, got a scalar")
    return per_example_mean(d)


def perceptual_mix(x, y, lpips_fn=None):
    """Per-example (N,) paper eq. 3/4 mix, LPIPS + 0.05 L2 + 0.75 MS-SSIM-L1, of prepared (N, H, W, 3) images.

    `lpips_fn(a, b)` gets NHWC images in the loss's own range and returns (N,) distances;
    None uses `revisp_tf.losses.lpips.lpips_distance`.
    """
    return (
        LPIPS_WEIGHT * _lpips_per_example(lpips_fn, x, y)
        + L2_WEIGHT * _l2_per_example(x, y)
        + MSSSIM_L1_WEIGHT * ms_ssim_l1(x, y, reduction="none")
    )


def l2(pred, gt, gamma=None, reduction: str = "mean"):
    """Mean squared error over all pixels, optionally after gamma."""
    check_reduction(reduction)
    x, y, rank = _prepared(pred, gt, None, None, gamma)
    return reduce_loss(_l2_per_example(x, y), reduction, rank)


def l2_masked(pred, gt, mask, region: str = "oe", gamma=None, reduction: str = "mean"):
    """L2 on `region`-zeroed images: the loss of the final L2-only phase (mean over all pixels)."""
    check_reduction(reduction)
    x, y, rank = _prepared(pred, gt, mask, region, gamma)
    return reduce_loss(_l2_per_example(x, y), reduction, rank)


def oe_loss(pred, gt, mask, reduction: str = "mean"):
    """U-Net (OE) loss: MS-SSIM-L1 on OE-zeroed images (non-overexposed pixels set to 0)."""
    check_reduction(reduction)
    x, y, rank = _prepared(pred, gt, mask, "oe", None)
    return reduce_loss(ms_ssim_l1(x, y, reduction="none"), reduction, rank)


def noe_loss(pred, gt, mask, lpips_fn=None, gamma=None, reduction: str = "mean"):
    """U-Net (NOE) loss, paper eq. 1 + 3: the eq. 3 mix on NOE-zeroed images, optionally after gamma."""
    check_reduction(reduction)
    x, y, rank = _prepared(pred, gt, mask, "noe", gamma)
    return reduce_loss(perceptual_mix(x, y, lpips_fn), reduction, rank)


def p20_loss(pred, gt, lpips_fn=None, gamma=P20_GAMMA, reduction: str = "mean"):
    """Single-net (Huawei P20) loss, paper eq. 4: the eq. 3 mix on all pixels after gamma 1/3.6."""
    check_reduction(reduction)
    x, y, rank = _prepared(pred, gt, None, None, gamma)
    return reduce_loss(perceptual_mix(x, y, lpips_fn), reduction, rank)
