"""Simple forward ISP: linear camera RAW -> sRGB, the inverse of `unprocess` on unclipped pixels.

Gains (exposure, brightening, white balance), clip, bilinear demosaic (for packed
bayer input), camera -> sRGB colour matrix, clip, gamma 1/2.2, smoothstep tone curve.
`visualize_raw` renders a RAW whose camera is unknown for TensorBoard and PNG output;
`visualize_raw_uint8` is the 8-bit picture `infer --format png` writes and the evaluation report shows.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank
from revisp_tf.isp.bayer import CANONICAL_CFA, pattern_colors, unpack
from revisp_tf.isp.color import gamma, smoothstep
from revisp_tf.isp.unprocess import GAMMA, UnprocessParams, apply_ccm

# Bilinear interpolation kernels on a sparse plane: R and B sit on a 2-pixel lattice, G on a quincunx.
_KERNEL_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4.0
_KERNEL_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4.0
_GRAY_WORLD_EPS = 1e-6


def _channel_colors() -> np.ndarray:
    """Colour index (0=R, 1=G, 2=B) of each packed channel of the canonical pattern."""
    return np.array(pattern_colors(CANONICAL_CFA))


def demosaic_bilinear(packed):
    """Packed RGGB (…, h, w, 4) -> (…, 2h, 2w, 3) by bilinear interpolation; exact at each sample site."""
    x, rank = as_float_tensor(packed, "packed bayer", check_range=False)
    check_channels(x, 4, "packed bayer")
    colors = _channel_colors()
    # One sparse full-resolution plane per colour: its samples in place, zeros elsewhere.
    planes = [unpack(x * tf.constant((colors == c).astype(np.float32))) for c in range(3)]
    sparse = tf.concat(planes, axis=-1)
    # REFLECT keeps the CFA phase at the border (row -1 mirrors row 1, same parity).
    sparse = tf.pad(sparse, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    kernel = tf.constant(np.stack([_KERNEL_RB, _KERNEL_G, _KERNEL_RB], axis=-1)[..., np.newaxis])
    return restore_rank(tf.nn.depthwise_conv2d(sparse, kernel, [1, 1, 1, 1], "VALID"), rank)


def _per_image(value, batch, name: str):
    """Scalar or length-N value -> (N or 1, 1, 1, 1) float tensor for broadcasting over images."""
    v = tf.reshape(tf.convert_to_tensor(value, tf.float32), [-1, 1, 1, 1])
    n = v.shape[0]
    if n is not None and n != 1 and batch is not None and n != batch:
        raise ValueError(f"{name}: expected a scalar or one value per image ({batch}), got {n} values")
    return v


def apply_gains(image, gains_rgb):
    """Multiplies packed bayer (…, 4) or camera RGB (…, 3) by per-colour (…, 3) gains."""
    g = tf.convert_to_tensor(gains_rgb, tf.float32)
    if image.shape[-1] == 4:
        g = tf.gather(g, _channel_colors(), axis=-1)
    return image * g


def process(raw, params: UnprocessParams, exposure=1.0):
    """Packed RGGB (…, h, w, 4) or demosaiced camera RGB (…, H, W, 3) -> sRGB (…, H, W, 3) in [0, 1].

    `exposure` (a scalar or one value per image) multiplies the RAW before the
    camera's gains; above 1 it clips highlights the way an over-bright ISP does.
    """
    x, rank = as_float_tensor(raw, "raw", check_range=False)
    if x.shape[-1] not in (3, 4):
        raise ValueError(
            f"raw: expected packed bayer (4 channels) or demosaiced RGB (3 channels), got shape {tuple(x.shape)}"
        )
    x = apply_gains(x * _per_image(exposure, x.shape[0], "exposure"), params.gains.astype(np.float32))
    x = tf.clip_by_value(x, 0.0, 1.0)
    if x.shape[-1] == 4:
        x = demosaic_bilinear(x)
    x = tf.clip_by_value(apply_ccm(x, params.cam2rgb), 0.0, 1.0)
    return restore_rank(smoothstep(gamma(x, 1.0 / GAMMA)), rank)


def gray_world_gains(packed):
    """Per-image (N, 3) white-balance gains (G/R, 1, G/B) from channel means of packed RGGB."""
    colors = _channel_colors()
    means = tf.reduce_mean(packed, axis=[1, 2])
    per_color = [tf.reduce_mean(tf.gather(means, np.flatnonzero(colors == c), axis=-1), axis=-1) for c in range(3)]
    g = per_color[1]
    return tf.stack(
        [g / tf.maximum(per_color[0], _GRAY_WORLD_EPS), tf.ones_like(g), g / tf.maximum(per_color[2], _GRAY_WORLD_EPS)],
        axis=-1,
    )


def visualize_raw(packed, wb_gains=None):
    """Packed RGGB (…, h, w, 4) -> displayable RGB (…, 2h, 2w, 3) in [0, 1]: WB, bilinear demosaic, gamma.

    `wb_gains` is (red_gain, blue_gain), or (N, 2) per image; gray-world gains when None.
    """
    x, rank = as_float_tensor(packed, "packed bayer", check_range=False)
    check_channels(x, 4, "packed bayer")
    if wb_gains is None:
        gains = gray_world_gains(x)
    else:
        rb = tf.reshape(tf.convert_to_tensor(wb_gains, tf.float32), [-1, 2])
        gains = tf.stack([rb[:, 0], tf.ones_like(rb[:, 0]), rb[:, 1]], axis=-1)
    x = tf.clip_by_value(apply_gains(x, gains[:, tf.newaxis, tf.newaxis, :]), 0.0, 1.0)
    rgb = gamma(demosaic_bilinear(x), 1.0 / GAMMA)
    return restore_rank(tf.clip_by_value(rgb, 0.0, 1.0), rank)


def frame_wb_gains(channel_means) -> tuple[float, float]:
    """(red_gain, blue_gain) of a whole frame by `gray_world_gains`' rule, from its 4 packed channel means (float64)."""
    means = tf.constant(np.reshape(np.asarray(channel_means, np.float64), (1, 1, 1, 4)), tf.float32)
    gains = gray_world_gains(means).numpy()[0]
    return float(gains[0]), float(gains[2])


def channel_means(packed) -> np.ndarray:
    """The 4 channel means of a packed frame (h, w, 4), summed in float64 as `infer` sums its bands."""
    x = np.asarray(packed, np.float32)
    return x.sum(axis=(0, 1), dtype=np.float64) / (x.shape[0] * x.shape[1])


def visualize_raw_uint8(packed, wb_gains=None) -> np.ndarray:
    """`visualize_raw` of one packed frame as 8-bit RGB, rounded as `write_rgb` rounds; the frame's own gains when None."""
    gains = frame_wb_gains(channel_means(packed)) if wb_gains is None else wb_gains
    return np.round(np.asarray(visualize_raw(packed, wb_gains=gains)) * 255.0).astype(np.uint8)
