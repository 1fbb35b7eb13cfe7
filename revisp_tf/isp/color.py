"""Colour maths: the paper's YUV matrix (eq. 2), gamma and the smoothstep tone curve."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank

# Paper eq. 2 (BT.601 analogue YUV); rows give Y, U, V from R, G, B.
YUV_MATRIX = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14713, -0.28886, 0.436],
        [0.615, -0.51499, -0.10001],
    ],
    dtype=np.float32,
)
# Floor before a fractional power: x**g has an infinite slope at 0 (Brooks et al. use 1e-8).
GAMMA_EPS = 1e-8


def rgb_to_yuv(rgb):
    """(…, 3) RGB -> (…, 3) YUV with the eq. 2 matrix."""
    x = tf.convert_to_tensor(rgb, tf.float32)
    return tf.tensordot(x, tf.constant(YUV_MATRIX.T), axes=1)


def luma(rgb):
    """(…, 3) RGB -> (…, 1) Y of eq. 2."""
    x = tf.convert_to_tensor(rgb, tf.float32)
    return tf.reduce_sum(x * tf.constant(YUV_MATRIX[0]), axis=-1, keepdims=True)


def gamma(x, g: float):
    """x ** g with a small floor so gradients stay finite at 0."""
    return tf.pow(tf.maximum(tf.convert_to_tensor(x, tf.float32), GAMMA_EPS), g)


def smoothstep(x):
    """The S-curve 3x^2 - 2x^3 (Brooks et al.'s global tone map)."""
    x = tf.clip_by_value(tf.convert_to_tensor(x, tf.float32), 0.0, 1.0)
    return 3.0 * x**2 - 2.0 * x**3


def inverse_smoothstep(y):
    """Inverse of `smoothstep` on [0, 1]: 0.5 - sin(asin(1 - 2y) / 3)."""
    y = tf.clip_by_value(tf.convert_to_tensor(y, tf.float32), 0.0, 1.0)
    return 0.5 - tf.sin(tf.asin(1.0 - 2.0 * y) / 3.0)


def bayer_to_rgb_half(packed):
    """Packed RGGB (…, h, w, 4) -> half-resolution (…, h, w, 3) RGB, averaging the two greens."""
    x, rank = as_float_tensor(packed, "packed bayer", check_range=False, allow_int=True)
    check_channels(x, 4, "packed bayer")
    rgb = tf.stack([x[..., 0], 0.5 * (x[..., 1] + x[..., 2]), x[..., 3]], axis=-1)
    return restore_rank(rgb, rank)


def bayer_to_yuv(packed):
    """Packed RGGB -> half-resolution YUV: the map of the bayer refinement step (paper sec. 3.6)."""
    return rgb_to_yuv(bayer_to_rgb_half(packed))
