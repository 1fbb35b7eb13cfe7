"""Input validation shared by the ISP ops: one clear ValueError per bad input."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.checks import check_unit_range


def _is_concrete(x) -> bool:
    return isinstance(x, np.ndarray) or (tf.is_tensor(x) and hasattr(x, "numpy"))


def as_float_tensor(x, name: str, *, check_range: bool = True, allow_int: bool = False):
    """Validates an image-like input and returns (float32 rank-4 tensor, original rank).

    Accepts NumPy arrays and tensors, unbatched (H, W, C) or batched (N, H, W, C).
    Values are range-checked only when they are concrete (NumPy or eager), since a
    graph cannot raise a Python error at run time.
    """
    if not tf.is_tensor(x):
        x = np.asarray(x)
    dtype = tf.as_dtype(x.dtype)
    if not (dtype.is_floating or (allow_int and dtype.is_integer)):
        want = "a float or integer array" if allow_int else "a float array with values in [0, 1]"
        raise ValueError(f"{name}: expected {want}, got dtype {dtype.name}")
    rank = len(x.shape)
    if rank not in (3, 4):
        raise ValueError(f"{name}: expected shape (H, W, C) or (N, H, W, C), got {tuple(x.shape)}")
    if check_range and _is_concrete(x):
        check_unit_range(x.numpy() if tf.is_tensor(x) else x, name)
    t = tf.cast(x, tf.float32)
    return (t[tf.newaxis] if rank == 3 else t), rank


def restore_rank(t, rank: int):
    """Drops the batch axis added by `as_float_tensor` for unbatched input."""
    return t[0] if rank == 3 else t


def check_channels(t, expected: int, name: str) -> None:
    c = t.shape[-1]
    if c is not None and c != expected:
        raise ValueError(f"{name}: expected {expected} channels in the last axis, got shape {tuple(t.shape)}")


def check_even(t, name: str) -> None:
    h, w = t.shape[-3], t.shape[-2]
    if (h is not None and h % 2) or (w is not None and w % 2):
        raise ValueError(f"{name}: expected even height and width (whole 2x2 CFA tiles), got {h}x{w}")
