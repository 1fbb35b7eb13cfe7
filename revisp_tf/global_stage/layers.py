"""The camera-fitted global stage and the frame-level context its corrections see.

A model with a global stage maps (rgb, context) to RAW in three steps:

1. `GlobalCurves`: each RAW colour = bias + a sum of smooth curves of R, G and B (the camera's
   inverse colour/tone, fitted in closed form by `revisp_tf.global_stage.fit`, or set to UPI's
   default camera), then `FrameGains`: per-image gains, the recorded ones (white balance and
   exposure, in the context) where the frame has them, else predicted from the frame's statistics.
2. The U-Net(s) see the RGB, the mask, the context and that estimate, and predict a
   multiplicative and an additive correction (`Correction`); their last layer starts at zero,
   so an untrained model is the global stage exactly.
3. Mask fusion (dual), clamp, mosaic.

The context is per pixel but computed once per *frame* (`revisp_tf.global_stage.context`, NumPy only):
the pixel's position in the frame, a heavily blurred view of the whole frame and the frame's
colour statistics. Everything after it is per pixel or a U-Net, so a frame cut into tiles, each
with its slice of the frame's context, gives the same output as the whole frame.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from revisp_tf.global_stage.context import BLURRED, CONTEXT_GRID, FRAME_VALUES, GAINS, GIVEN, N_STATS, POSITION, STATS
from revisp_tf.global_stage.fit import DEFAULT_KNOTS, GlobalInverse
from revisp_tf.isp.color import inverse_smoothstep
from revisp_tf.isp.unprocess import default_params, gamma_expansion

_PACKAGE = "revisp_tf"
LOCAL_CHANNELS = 4  # what the U-Nets see: squared distance from the frame centre and the blurred view


def context_window_tf(grid, frame_values, frame_hw, origin, size):
    """TF form of `context_window` (runs inside tf.data): pixel centres sample the grid bilinearly."""
    grid = tf.convert_to_tensor(grid, tf.float32)
    fh, fw = (tf.cast(v, tf.float32) for v in tf.unstack(tf.convert_to_tensor(frame_hw)))
    y0, x0 = (tf.cast(v, tf.float32) for v in tf.unstack(tf.convert_to_tensor(origin)))
    h, w = (tf.cast(v, tf.int32) for v in tf.unstack(tf.convert_to_tensor(size)))
    ys = y0 + tf.range(tf.cast(h, tf.float32)) + 0.5  # pixel centres in frame coordinates
    xs = x0 + tf.range(tf.cast(w, tf.float32)) + 0.5
    pos = tf.stack(tf.meshgrid(2.0 * ys / fh - 1.0, 2.0 * xs / fw - 1.0, indexing="ij"), axis=-1)

    def axis(coord, size_px):
        g = tf.clip_by_value(coord / size_px * CONTEXT_GRID - 0.5, 0.0, CONTEXT_GRID - 1.0)
        lo = tf.minimum(tf.cast(tf.floor(g), tf.int32), CONTEXT_GRID - 2)
        return lo, g - tf.cast(lo, tf.float32)

    iy, ty = axis(ys, fh)
    ix, tx = axis(xs, fw)
    rows = tf.gather(grid, iy) * (1.0 - ty)[:, None, None] + tf.gather(grid, iy + 1) * ty[:, None, None]
    blurred = tf.gather(rows, ix, axis=1) * (1.0 - tx)[None, :, None] + tf.gather(rows, ix + 1, axis=1) * tx[None, :, None]
    constants = tf.broadcast_to(tf.convert_to_tensor(frame_values, tf.float32), tf.stack([h, w, FRAME_VALUES]))
    return tf.concat([pos, blurred, constants], axis=-1)


# ----------------------------------------------------------------------------- initial values


def upi_inverse(knots: int = DEFAULT_KNOTS) -> GlobalInverse:
    """UPI's default camera (Brooks et al.) as curves: f_cj(t) = rgb2cam[c, j] * linear(t) / gain_c.

    Exact at the knots for everything but UPI's highlight fade of the gains (above 0.9 grey) and
    its clip; the model's output clamp does the clip.
    """
    p = default_params()
    t = np.linspace(0.0, 1.0, knots)
    linear = np.asarray(gamma_expansion(inverse_smoothstep(t.astype(np.float32))), np.float64)
    m = np.asarray(p.rgb2cam) / p.gains[:, None]
    return GlobalInverse(m[:, :, None] * linear[None, None, :], np.zeros(3))


# ----------------------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GlobalCurves(keras.layers.Layer):
    """RGB (N, H, W, 3) in [0, 1] -> (N, H, W, 3) RAW estimate: bias_c + sum_j f_cj(rgb_j).

    f_cj is piecewise linear on `knots` evenly spaced knots (the values at the knots are the
    weights), so `revisp_tf.global_stage.fit.fit_global_inverse` gives its weights in closed form.

    Args:
      knots: knots per curve.
    """

    def __init__(self, knots: int = DEFAULT_KNOTS, **kwargs):
        super().__init__(**kwargs)
        self.knots = int(knots)

    def build(self, input_shape):
        init = upi_inverse(self.knots)
        # (3 inputs * knots, 3 colours): one matmul over the concatenated hat-function weights.
        kernel = np.transpose(init.curves, (1, 2, 0)).reshape(3 * self.knots, 3)
        self.kernel = self.add_weight(name="curves", shape=kernel.shape, initializer=keras.initializers.Constant(kernel))
        self.bias = self.add_weight(name="bias", shape=(3,), initializer="zeros")

    def call(self, rgb):
        t = tf.clip_by_value(rgb, 0.0, 1.0) * (self.knots - 1)
        centres = tf.range(self.knots, dtype=rgb.dtype)
        # Per input channel (N, H, W, knots); concatenating keeps the channel count static (TFLite).
        basis = [tf.nn.relu(1.0 - tf.abs(t[..., j : j + 1] - centres)) for j in range(3)]
        return tf.matmul(tf.concat(basis, axis=-1), tf.cast(self.kernel, rgb.dtype)) + tf.cast(self.bias, rgb.dtype)

    def set_inverse(self, inverse: GlobalInverse) -> None:
        """Loads fitted curves (must have this layer's knots)."""
        if inverse.knots != self.knots:
            raise ValueError(f"GlobalCurves: fitted with {inverse.knots} knots, the layer has {self.knots}")
        self.kernel.assign(np.transpose(inverse.curves, (1, 2, 0)).reshape(3 * self.knots, 3))
        self.bias.assign(inverse.bias)

    def inverse(self) -> GlobalInverse:
        """The layer's curves as a GlobalInverse (NumPy)."""
        kernel = np.asarray(self.kernel.numpy(), np.float64).reshape(3, self.knots, 3)
        return GlobalInverse(np.transpose(kernel, (2, 0, 1)), np.asarray(self.bias.numpy(), np.float64))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "knots": self.knots}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FrameGains(keras.layers.Layer):
    """Per-image gains: estimate * exp(log_gain), log_gain per colour the recorded one or the prior's.

    The prior: W (stats - reference) + b, stats the frame's colour constancy statistics
    (`global_stage.context`). W and b start at zero (no change); `reference` is the training
    frames' mean statistics. Trained on frames with recorded gains, the fit phase sets W and b in
    closed form (`global_stage.prior`); otherwise SGD learns W from how frames differ.

    Where the context says a frame's gains were recorded they replace the prior's exactly: the
    white balance sets the chroma (each colour's log gain minus green's), the exposure gain the
    level (green's); either alone takes the other from the prior. Only when `recorded` is 1, which
    the fit phase sets when it fitted the curves on balanced RAW: curves fitted frame-blind hold
    the training frames' gains already, so such a model ignores recorded ones.
    """

    def build(self, input_shapes):
        self.kernel = self.add_weight(name="kernel", shape=(N_STATS, 3), initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(3,), initializer="zeros")
        self.reference = self.add_weight(name="reference", shape=(N_STATS,), initializer="zeros", trainable=False)
        self.recorded = self.add_weight(name="recorded", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs):
        estimate, context = inputs
        dtype = context.dtype
        stats = context[..., STATS] - tf.cast(self.reference, dtype)
        prior = tf.matmul(stats, tf.cast(self.kernel, dtype)) + tf.cast(self.bias, dtype)
        given, flags = context[..., GAINS], context[..., GIVEN] * tf.cast(self.recorded, dtype)
        has_wb, has_level = flags[..., :1], flags[..., 1:]
        level = has_level * given[..., 1:2] + (1.0 - has_level) * prior[..., 1:2]
        chroma = has_wb * (given - given[..., 1:2]) + (1.0 - has_wb) * (prior - prior[..., 1:2])
        return estimate * tf.exp(level + chroma)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LocalContext(keras.layers.Layer):
    """What the U-Nets see of the context: the squared distance from the frame centre and the blurred view.

    Vignetting (of the lens, or an ISP's vignette filter) is radial, so the radius is the part
    of the position that carries over between frames; (y, x) would let nets trained on one
    frame learn that frame's scene by heart. The frame statistics are one value per frame, seen
    constant in training on one frame: only `FrameGains` uses them.
    """

    def call(self, context):
        radius2 = 0.5 * tf.reduce_sum(tf.square(context[..., POSITION]), axis=-1, keepdims=True)
        return tf.concat([radius2, context[..., BLURRED]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], LOCAL_CHANNELS)


MAX_LOG_GAIN = 0.5  # a correction scales the estimate by exp(+-0.5) = 0.61..1.65 at most
MAX_OFFSET = 0.05  # and adds at most +-0.05 (RAW units)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Correction(keras.layers.Layer):
    """A U-Net's bounded correction of the global estimate: estimate * exp(g) + offset.

    Inputs `[estimate (N, H, W, 3), net (N, H, W, 6)]`, the net's channels (gain, offset), each
    squashed by tanh to MAX_LOG_GAIN and MAX_OFFSET: local tone mapping and vignetting need gains
    of about 0.8-1.3, and a bound keeps nets trained on one frame from wrecking the
    estimate on a frame unlike it. A zero net output is no correction.
    """

    def call(self, inputs):
        estimate, net = inputs
        gain = tf.exp(MAX_LOG_GAIN * tf.tanh(net[..., :3]))
        return estimate * gain + MAX_OFFSET * tf.tanh(net[..., 3:])

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
