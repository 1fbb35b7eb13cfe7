"""Bayer-to-bayer refinement loss (paper sec. 3.6): L1 or L2 between packed bayers in YUV space.

Both packed RGGB arrays are reduced to half-resolution RGB by averaging their two greens
and mapped to YUV with the eq. 2 matrix; the loss is taken there.
"""

from __future__ import annotations

import tensorflow as tf

from revisp_tf.checks import check_choice
from revisp_tf.isp._checks import as_float_tensor
from revisp_tf.isp.color import bayer_to_yuv
from revisp_tf.losses._reduction import check_reduction, per_example_mean, reduce_loss

NORMS = ("l1", "l2")


def yuv_bayer_loss(pred_packed, gt_packed, norm: str = "l1", reduction: str = "mean"):
    """Mean |ΔYUV| ("l1") or mean ΔYUV² ("l2") of packed (…, h, w, 4) bayers; (N,) with reduction="none"."""
    check_choice("norm", norm, NORMS)
    check_reduction(reduction)
    x, rank = as_float_tensor(pred_packed, "predicted packed bayer", check_range=False)
    y, _ = as_float_tensor(gt_packed, "ground-truth packed bayer", check_range=False)
    if x.shape.is_fully_defined() and y.shape.is_fully_defined() and x.shape != y.shape:
        raise ValueError(f"packed bayer shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    d = bayer_to_yuv(x) - bayer_to_yuv(y)
    err = tf.abs(d) if norm == "l1" else tf.square(d)
    return reduce_loss(per_example_mean(err), reduction, rank)
