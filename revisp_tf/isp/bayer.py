"""CFA patterns, pack/unpack and mosaic: the one place the packed channel order lives.

A *packed* bayer array holds the 2x2 CFA tile in its channels, by position:
channel 0 = (0,0), 1 = (0,1), 2 = (1,0), 3 = (1,1). For the canonical RGGB
pattern that is R, G (row 0), G (row 1), B. Every RAW array the models see or
emit is packed RGGB; other patterns are converted by cropping the mosaic,
never by permuting channels (a permutation moves samples by a pixel).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.isp._checks import as_float_tensor, check_even, check_channels, restore_rank

CANONICAL_CFA = "RGGB"
CFA_PATTERNS = ("RGGB", "GRBG", "GBRG", "BGGR")
# (row, col) of each packed channel inside the 2x2 tile.
TILE_POSITIONS = ((0, 0), (0, 1), (1, 0), (1, 1))
_COLOR_INDEX = {"R": 0, "G": 1, "B": 2}


def check_pattern(pattern: str) -> str:
    """Returns the upper-case CFA pattern name or raises ValueError."""
    p = str(pattern).upper()
    if p not in CFA_PATTERNS:
        raise ValueError(f"unknown CFA pattern {pattern!r}; expected one of {', '.join(CFA_PATTERNS)}")
    return p


def pattern_colors(pattern: str) -> tuple[int, int, int, int]:
    """Colour index (0=R, 1=G, 2=B) of each packed channel for `pattern`."""
    return tuple(_COLOR_INDEX[c] for c in check_pattern(pattern))


def cfa_shift(src: str, dst: str) -> tuple[int, int]:
    """(dy, dx) such that mosaic[dy:, dx:] of a `src` mosaic is a `dst` mosaic."""
    src, dst = check_pattern(src), check_pattern(dst)
    for dy in (0, 1):
        for dx in (0, 1):
            shifted = "".join(src[((r + dy) % 2) * 2 + (c + dx) % 2] for r, c in TILE_POSITIONS)
            if shifted == dst:
                return dy, dx
    raise AssertionError("all four bayer patterns are shifts of each other")


def pack(mosaic):
    """(…, H, W, 1) single-plane mosaic -> (…, H/2, W/2, 4) packed, channels by tile position."""
    x, rank = as_float_tensor(mosaic, "mosaic", check_range=False, allow_int=True)
    check_channels(x, 1, "mosaic")
    check_even(x, "mosaic")
    # space_to_depth orders channels (0,0), (0,1), (1,0), (1,1): exactly TILE_POSITIONS.
    return restore_rank(tf.nn.space_to_depth(x, 2), rank)


def unpack(packed):
    """(…, H/2, W/2, 4) packed -> (…, H, W, 1) single-plane mosaic."""
    x, rank = as_float_tensor(packed, "packed bayer", check_range=False, allow_int=True)
    check_channels(x, 4, "packed bayer")
    return restore_rank(tf.nn.depth_to_space(x, 2), rank)


def mosaic(rgb, pattern: str = CANONICAL_CFA):
    """Samples a full-resolution (…, H, W, 3) image with a CFA -> packed (…, H/2, W/2, 4)."""
    x, rank = as_float_tensor(rgb, "rgb", check_range=False)
    check_channels(x, 3, "rgb")
    check_even(x, "rgb")
    planes = [x[:, r::2, c::2, k] for (r, c), k in zip(TILE_POSITIONS, pattern_colors(pattern))]
    return restore_rank(tf.stack(planes, axis=-1), rank)


def crop_to_pattern(image, src: str, dst: str):
    """Crops a full-resolution (…, H, W, C) image so its CFA phase goes from `src` to `dst`.

    A shifted axis loses one pixel at each end, so the result stays even-sized.
    """
    dy, dx = cfa_shift(src, dst)
    x = tf.convert_to_tensor(image)
    h, w = tf.shape(x)[-3], tf.shape(x)[-2]
    return x[..., dy : h - dy, dx : w - dx, :]


def convert_pattern(packed, src: str, dst: str = CANONICAL_CFA):
    """Packed `src` bayer -> packed `dst` bayer by shifting the mosaic (crops 1 packed row/col per shifted axis)."""
    if check_pattern(src) == check_pattern(dst):
        return tf.convert_to_tensor(packed, tf.float32) if isinstance(packed, np.ndarray) else packed
    return pack(crop_to_pattern(unpack(packed), src, dst))
