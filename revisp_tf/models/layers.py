"""Custom Keras layers of the reverse-ISP graph; all registered for `.keras` serialization."""

from __future__ import annotations

import keras
import tensorflow as tf

from revisp_tf.isp import bayer
from revisp_tf.isp.mask import check_rule, overexposure_mask

_PACKAGE = "revisp_tf"


def _pad_amounts(size, multiple: int):
    """(before, after) padding that takes `size` to the next multiple, split as evenly as possible."""
    total = (-size) % multiple
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PadToMultiple(keras.layers.Layer):
    """Pads height and width with a constant up to a multiple of `multiple`.

    The authors pad with the constant 1 (504 -> 512), so the U-Net sees a bright frame.

    Args:
      multiple: height and width are padded up to a multiple of this (2**depth for a U-Net).
      value: the constant written into the border.
    """

    def __init__(self, multiple: int, value: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)
        self.value = float(value)

    def call(self, x):
        shape = tf.shape(x)
        top, bottom = _pad_amounts(shape[1], self.multiple)
        left, right = _pad_amounts(shape[2], self.multiple)
        y = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=self.value)
        # An explicit reshape keeps the static channel count through TFLite conversion with dynamic sizes.
        return tf.reshape(y, [-1, shape[1] + top + bottom, shape[2] + left + right, x.shape[-1]])

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        up = lambda s: None if s is None else s + (-s) % self.multiple  # noqa: E731
        return (n, up(h), up(w), c)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "value": self.value}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CropLike(keras.layers.Layer):
    """Crops `x` back to the height and width of `reference`, undoing `PadToMultiple`.

    Args:
      multiple: the same multiple the matching `PadToMultiple` used.
    """

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, inputs):
        x, reference = inputs
        shape = tf.shape(reference)
        top, _ = _pad_amounts(shape[1], self.multiple)
        left, _ = _pad_amounts(shape[2], self.multiple)
        return x[:, top : top + shape[1], left : left + shape[2], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[-1])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OverexposureMask(keras.layers.Layer):
    """RGB in [0, 1] -> (N, H, W, 1) overexposure mask (paper sec. 3.3), computed in the graph.

    Args:
      threshold: level at or above which a pixel is overexposed; None = the rule's default.
      rule: "luma" (Y of paper eq. 2 >= 0.978) or "max" (max(R, G, B) >= 0.99).
    """

    def __init__(self, threshold: float | None = None, rule: str = "luma", **kwargs):
        super().__init__(**kwargs)
        self.threshold = None if threshold is None else float(threshold)
        self.rule = check_rule(rule)

    def call(self, rgb):
        return overexposure_mask(rgb, self.threshold, self.rule)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "rule": self.rule}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskFusion(keras.layers.Layer):
    """Overexposure mask fusion (paper sec. 3.4): `mask * oe + (1 - mask) * noe`.

    Inputs are `[mask, oe, noe]`; keeping the three as this layer's inputs is what lets
    `training_model` recover the two nets' outputs from a saved inference model.
    """

    def call(self, inputs):
        mask, oe, noe = inputs
        return mask * oe + (1.0 - mask) * noe

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Mosaic(keras.layers.Layer):
    """Full-resolution (N, H, W, 3) image -> packed (N, H/2, W/2, 4) bayer of pattern `cfa`.

    Args:
      cfa: the CFA pattern sampled; the project's models emit the canonical RGGB.
    """

    def __init__(self, cfa: str = bayer.CANONICAL_CFA, **kwargs):
        super().__init__(**kwargs)
        self.cfa = bayer.check_pattern(cfa)

    def call(self, x):
        return bayer.mosaic(x, self.cfa)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        half = lambda s: None if s is None else s // 2  # noqa: E731
        return (n, half(h), half(w), 4)

    def get_config(self):
        return {**super().get_config(), "cfa": self.cfa}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Clamp01(keras.layers.Layer):
    """Clamps to [0, 1] (the authors' `torch.clamp`), with a straight-through gradient in training.

    The forward value is the clamp in training and inference alike. In training the gradient
    passes through as if there were no clamp: with a hard clamp, a fresh net regressing dark RAW
    (means around 0.1) drives about half its outputs below 0, where they get no gradient and stay.
    """

    def call(self, x, training=None):
        clamped = tf.clip_by_value(x, 0.0, 1.0)
        if training:
            return x + tf.stop_gradient(clamped - x)
        return clamped

    def compute_output_shape(self, input_shape):
        return input_shape
