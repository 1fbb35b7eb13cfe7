"""Demosaic Net (Gharbi et al. 2016), a Keras port of PyPI `demosaicnet==0.0.14` `BayerDemosaick`.

The released network expects a full-resolution GRBG mosaic as a 3-channel image with zeros
at the missing colours and, with its default `pad=False`, crops 31 px off every side. This
port takes the project's packed RGGB bayer instead and returns an image of the full input
size; everything in between happens inside the model:

1. `ReflectTiles` mirrors 16 whole 2x2 tiles onto every side (whole tiles keep the CFA phase).
2. `ZeroFilledMosaic` shifts the RGGB mosaic by one column to GRBG (`bayer.convert_pattern`,
   which drops one column at each end) and spreads it into the zero-filled 3-channel mosaic.
3. The network itself, layer for layer, with PyTorch's `pad=False` (valid) convolutions.
4. The output loses 31 px per side: 32 px of padding minus the dropped column gives exactly
   the input width; the rows come out one longer at each end and are cropped.

So every output pixel is the PyTorch model with `pad=False` run on the reflect-padded GRBG
mosaic, and pixels at least 31 rows and 32 columns from the border equal PyTorch `pad=False`
on the unpadded mosaic. `pad=True` is deliberately not reproduced: it zero-pads every layer,
which the released weights were never trained with, and darkens the borders. The output is
not clamped, as in PyTorch.

Reference: M. Gharbi, G. Chaurasia, S. Paris, F. Durand, "Deep Joint Demosaicking and
Denoising", SIGGRAPH Asia 2016; code and weights: PyPI demosaicnet 0.0.14 (MIT).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from revisp_tf import weights as weights_lib
from revisp_tf.isp import bayer
from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank

_PACKAGE = "revisp_tf"

NET_CFA = "GRBG"  # demosaicnet.mosaic.bayer: "G r / b G"
DEPTH = 15
WIDTH = 64
PARAMETERS = 560_886
WEIGHTS_FILE = "demosaicnet_bayer.npz"
# Valid convs eat 15 px (packed) * 2 + 1 px (full res) = 31 px per side; 16 tiles = 32 px is the
# smallest whole-tile padding that covers it.
BORDER_TILES = 16
_LOST_PER_SIDE = 2 * DEPTH + 1


def _reflect_indices(n, pad: int):
    """Indices extending a length-`n` axis by `pad` per side, mirrored without repeating the edge.

    The mirror repeats (period 2n - 2) when `pad` exceeds the axis, like `np.pad(mode="reflect")`.
    """
    period = tf.maximum(2 * (n - 1), 1)
    i = tf.math.floormod(tf.range(-pad, n + pad), period)
    return tf.minimum(i, period - i)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReflectTiles(keras.layers.Layer):
    """Extends a packed bayer (N, h, w, 4) by `pad` whole 2x2 tiles per side, mirroring the tiles.

    Mirroring packed pixels moves whole CFA tiles, so the padded mosaic keeps its pattern.
    Works for any size, including inputs smaller than `pad`.

    Args:
      pad: tiles added on each of the four sides.
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, packed):
        shape = tf.shape(packed)
        x = tf.gather(packed, _reflect_indices(shape[1], self.pad), axis=1)
        return tf.gather(x, _reflect_indices(shape[2], self.pad), axis=2)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda s: None if s is None else s + 2 * self.pad  # noqa: E731
        return (n, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ZeroFilledMosaic(keras.layers.Layer):
    """Packed `src` bayer -> full-resolution `dst` mosaic as (N, H, W, 3) with zeros at missing colours.

    The pattern change shifts the mosaic (`bayer.convert_pattern`), so each shifted axis loses
    one pixel at each end. The result is `demosaicnet.bayer(image)` in NHWC for `dst="GRBG"`.

    Args:
      src: CFA pattern of the packed input.
      dst: CFA pattern of the zero-filled output.
    """

    def __init__(self, src: str = bayer.CANONICAL_CFA, dst: str = NET_CFA, **kwargs):
        super().__init__(**kwargs)
        self.src = bayer.check_pattern(src)
        self.dst = bayer.check_pattern(dst)
        colors = np.eye(3, dtype=np.float32)[list(bayer.pattern_colors(self.dst))]  # (tile position, colour)
        # 1x1 conv kernel writing packed channel k to channels (k, colour of k) of a depth_to_space block.
        self._spread = np.einsum("kl,lc->klc", np.eye(4, dtype=np.float32), colors).reshape(1, 1, 4, 12)

    def call(self, packed):
        shifted = bayer.convert_pattern(packed, self.src, self.dst)
        return tf.nn.depth_to_space(tf.nn.conv2d(shifted, self._spread, 1, "VALID"), 2)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        dy, dx = bayer.cfa_shift(self.src, self.dst)
        full = lambda s, d: None if s is None else 2 * s - 2 * d  # noqa: E731
        return (n, full(h, dy), full(w, dx), 3)

    def get_config(self):
        return {**super().get_config(), "src": self.src, "dst": self.dst}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FilterMaskProduct(keras.layers.Layer):
    """Splits the channels in halves, filters and masks, and multiplies them (the released model's gating)."""

    def call(self, features):
        filters, masks = tf.split(features, 2, axis=-1)
        return filters * masks

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GroupedConvTranspose2x2(keras.layers.Layer):
    """PyTorch `ConvTranspose2d(C, groups, kernel_size=2, stride=2, groups=groups)`: one output channel per group.

    With kernel size equal to stride each input pixel stamps its own 2x2 block, so the layer
    is a block-diagonal 1x1 conv to (dy, dx, group) channels followed by `depth_to_space`.
    The kernel (2, 2, C) is PyTorch's weight (C, 1, 2, 2) moved to channels-last.

    Args:
      groups: number of groups, which is also the number of output channels.
    """

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(f"{self.name}: {channels} input channels do not split into {self.groups} groups")
        self.kernel = self.add_weight(shape=(2, 2, channels), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.groups,), initializer="zeros", name="bias")
        self._membership = np.repeat(np.eye(self.groups, dtype=np.float32), channels // self.groups, axis=0)

    def call(self, x):
        channels = self._membership.shape[0]
        kernel = tf.transpose(tf.convert_to_tensor(self.kernel), [2, 0, 1])  # (C, dy, dx)
        dense = kernel[..., tf.newaxis] * self._membership[:, tf.newaxis, tf.newaxis, :]  # (C, dy, dx, group)
        y = tf.nn.conv2d(x, tf.reshape(dense, [1, 1, channels, 4 * self.groups]), 1, "VALID")
        return tf.nn.depth_to_space(y, 2) + tf.convert_to_tensor(self.bias)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        double = lambda s: None if s is None else 2 * s  # noqa: E731
        return (n, double(h), double(w), self.groups)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


def _network(mosaic):
    """`BayerDemosaick.forward` with `pad=False`; layer names follow the PyTorch modules."""
    x = keras.layers.Conv2D(4, 2, strides=2, name="pack_mosaic")(mosaic)
    for i in range(1, DEPTH + 1):
        x = keras.layers.Conv2D(2 * WIDTH if i == DEPTH else WIDTH, 3, activation="relu", name=f"conv{i}")(x)
    x = FilterMaskProduct(name="filter_mask_product")(x)
    x = keras.layers.Conv2D(12, 1, name="residual_predictor")(x)
    upsampled = GroupedConvTranspose2x2(3, name="upsampler")(x)
    # The upsampled residual is 2 * 2 * DEPTH px smaller than the mosaic: centre-crop (PyTorch `_crop_like`).
    cropped = keras.layers.Cropping2D(2 * DEPTH, name="crop_mosaic")(mosaic)
    x = keras.layers.Concatenate(name="skip")([cropped, upsampled])
    x = keras.layers.Conv2D(WIDTH, 3, activation="relu", name="post_conv")(x)
    return keras.layers.Conv2D(3, 1, name="output")(x)


def build_demosaicnet(weights: str | None = "pretrained") -> keras.Model:
    """Packed RGGB bayer (N, H/2, W/2, 4) in [0, 1] -> demosaiced camera RGB (N, H, W, 3).

    Args:
      weights: "pretrained" loads `saved_models/demosaicnet_bayer.npz` (sha256-checked);
        None leaves the layers randomly initialised.
    """
    if weights not in ("pretrained", None):
        raise ValueError(f"weights: expected 'pretrained' or None, got {weights!r}")
    packed = keras.Input((None, None, 4), name="packed_rggb")
    tiles = ReflectTiles(BORDER_TILES, name="reflect_tiles")(packed)
    mosaic = ZeroFilledMosaic(bayer.CANONICAL_CFA, NET_CFA, name="grbg_mosaic")(tiles)
    out = _network(mosaic)
    dy, dx = bayer.cfa_shift(bayer.CANONICAL_CFA, NET_CFA)
    extra_rows = 2 * BORDER_TILES - dy - _LOST_PER_SIDE
    extra_cols = 2 * BORDER_TILES - dx - _LOST_PER_SIDE
    out = keras.layers.Cropping2D(((extra_rows, extra_rows), (extra_cols, extra_cols)), name="crop_to_input")(out)
    model = keras.Model(packed, out, name="demosaicnet")
    if weights == "pretrained":
        load_weights(model, weights_lib.checked_path(WEIGHTS_FILE))
    return model


def load_weights(model: keras.Model, path) -> None:
    """Assigns every variable of `model` from an .npz keyed by variable path (`conv1/kernel`, ...)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    for variable in model.weights:
        if variable.path not in arrays:
            raise ValueError(f"{path}: no array for {variable.path}; the file holds {sorted(arrays)}")
        value = arrays.pop(variable.path)
        if value.shape != tuple(variable.shape):
            raise ValueError(
                f"{path}: {variable.path} has shape {value.shape}, the model expects {tuple(variable.shape)}"
            )
        variable.assign(value)
    if arrays:
        raise ValueError(f"{path}: arrays {sorted(arrays)} match no variable of {model.name}")


@functools.lru_cache(maxsize=1)
def _pretrained():
    return build_demosaicnet("pretrained")


def demosaic(packed):
    """Packed RGGB bayer (…, H/2, W/2, 4) in [0, 1], NumPy or tensor -> (…, H, W, 3) tensor (pretrained, cached)."""
    x, rank = as_float_tensor(packed, "packed bayer")
    check_channels(x, 4, "packed bayer")
    return restore_rank(_pretrained()(x, training=False), rank)
