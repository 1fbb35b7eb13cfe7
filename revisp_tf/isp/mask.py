"""The overexposure mask (paper sec. 3.3)."""

from __future__ import annotations

import tensorflow as tf

from revisp_tf.checks import check_choice
from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank
from revisp_tf.isp.color import luma

LUMA_THRESHOLD = 0.978  # paper: Y >= 0.978
MAX_THRESHOLD = 0.99  # paper's alternative: max(R, G, B) >= 0.99
MASK_RULES = {"luma": LUMA_THRESHOLD, "max": MAX_THRESHOLD}


def check_rule(rule: str) -> str:
    check_choice("mask rule", rule, MASK_RULES)
    return rule


def overexposure_mask(rgb, threshold: float | None = None, rule: str = "luma"):
    """(…, H, W, 3) RGB in [0, 1] -> (…, H, W, 1) float mask, 1 where overexposed.

    `rule="luma"` marks Y >= threshold (default 0.978); `rule="max"` marks
    max(R, G, B) >= threshold (default 0.99).
    """
    threshold = MASK_RULES[check_rule(rule)] if threshold is None else float(threshold)
    x, rank = as_float_tensor(rgb, "rgb")
    check_channels(x, 3, "rgb")
    level = luma(x) if rule == "luma" else tf.reduce_max(x, axis=-1, keepdims=True)
    return restore_rank(tf.cast(level >= threshold, tf.float32), rank)
