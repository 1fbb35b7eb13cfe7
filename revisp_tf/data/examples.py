"""One reader of an (RGB, RAW) example, used by every path that reads pairs: training data (in
tf.data), the global stage's fit, `eval` and `prepare-gt`.

A RAW is stored packed (h, w, 4) `.npy`, or as a mosaic (`.npy` (H, W) or 16-bit PNG), in the
sensor's own CFA pattern and levels. The model works in packed RGGB in model units: a non-RGGB
pattern is converted by cropping one row and/or column of the mosaic, and the RGB is cropped to
match. The same TF ops run eagerly and inside `Dataset.map`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.data.scan import Example, check_raw
from revisp_tf.io.images import read_rgb
from revisp_tf.isp import bayer
from revisp_tf.isp.sensor import SensorSpec


def canonical_raw(stored, sensor: SensorSpec):
    """Stored RAW (packed (h, w, 4), or a mosaic (H, W) / (H, W, 1)) -> packed RGGB in model units."""
    raw = tf.convert_to_tensor(stored)
    if raw.shape.rank == 2:
        raw = raw[..., tf.newaxis]
    if raw.shape[-1] == 1:
        raw = bayer.pack(raw)
    raw = sensor.to_model_units(raw)
    return bayer.convert_pattern(raw, sensor.cfa, bayer.CANONICAL_CFA) if sensor.cfa != bayer.CANONICAL_CFA else raw


def canonical_rgb(rgb, sensor: SensorSpec):
    """RGB (or anything laid out like it) cropped as `canonical_raw` crops the sensor's mosaic."""
    return bayer.crop_to_pattern(rgb, sensor.cfa, bayer.CANONICAL_CFA) if sensor.cfa != bayer.CANONICAL_CFA else rgb


def read_raw(path, sensor: SensorSpec) -> np.ndarray:
    """A validated RAW file as packed RGGB in model units, float32 (h, w, 4)."""
    return np.asarray(canonical_raw(check_raw(path, sensor), sensor), np.float32)


def read_example(example: Example, sensor: SensorSpec) -> tuple[np.ndarray, np.ndarray]:
    """(RGB float32 (H, W, 3) in [0, 1], packed RGGB in model units) of an example, on the same canonical grid."""
    return np.asarray(canonical_rgb(read_rgb(example.rgb), sensor)), read_raw(example.raw, sensor)
