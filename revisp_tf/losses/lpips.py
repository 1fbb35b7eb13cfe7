"""LPIPS v0.1 with the AlexNet backbone, frozen, as a Keras layer, a distance and a loss.

A port of `lpips.LPIPS(net='alex', version='0.1')` (PyPI lpips 0.1.4) carrying the same
pretrained weights (converted by scripts/convert_lpips_weights.py, shipped as
saved_models/lpips_alex.npz). Images are in [0, 1], NHWC; they are mapped to [-1, 1] as
lpips expects, so `lpips_distance(a, b)` equals lpips' output for `2a - 1, 2b - 1`.
"""

from __future__ import annotations

import threading

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank
from revisp_tf.weights import checked_path

WEIGHTS_FILE = "lpips_alex.npz"

# lpips ScalingLayer (v0.1): standardises [-1, 1] input for the ImageNet-trained backbone.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# torchvision AlexNet `features` up to the last ReLU: (filters, kernel, stride, zero padding,
# whether a 3x3 stride-2 max-pool precedes the conv). LPIPS taps the output of every ReLU.
ALEX_CONVS = (
    (64, 11, 4, 2, False),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, True),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, False),
)

# Smallest side for which the second max-pool still has a 3x3 window (as in lpips/torch).
MIN_SIZE = 31

# lpips.normalize_tensor adds this to the channel L2 norm.
NORM_EPS = 1e-10


def load_weights() -> dict[str, np.ndarray]:
    """The LPIPS-Alex arrays (HWIO kernels), from the shipped file after its sha256 check."""
    with np.load(checked_path(WEIGHTS_FILE), allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def _pretrained(value: np.ndarray):
    """Initializer giving `value`: variables are born with the pretrained numbers, on every
    replica of a tf.distribute strategy and inside a tf.function (no later assign to miss)."""

    def initializer(shape, dtype=None):
        if tuple(shape) != value.shape:
            raise ValueError(f"{WEIGHTS_FILE}: array of shape {value.shape} for a weight of shape {tuple(shape)}")
        return ops.convert_to_tensor(value, dtype=dtype)

    return initializer


def _unit_normalise(x):
    """Divides each feature vector by its L2 norm over channels, as lpips.normalize_tensor."""
    return x / (ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)) + NORM_EPS)


def _check_pair(a, b) -> None:
    """Static checks shared by the layer and `lpips_distance`: RGB, same shape, big enough."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) != 4 or len(sb) != 4 or any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
        raise ValueError(f"lpips: expected a and b of the same shape (N, H, W, 3), got {sa} and {sb}")
    check_channels(a, 3, "lpips input a")
    for side in sa[1:3]:
        if side is not None and side < MIN_SIZE:
            raise ValueError(f"lpips: images must be at least {MIN_SIZE}x{MIN_SIZE} px, got shape {sa}")


@keras.saving.register_keras_serializable(package="revisp_tf")
class LPIPSAlex(keras.layers.Layer):
    """LPIPS v0.1 distance with the AlexNet backbone and its pretrained weights, frozen.

    Computes `lpips.LPIPS(net='alex')(2a - 1, 2b - 1)`: the ScalingLayer, AlexNet features
    (conv 11x11/4 pad 2, max-pool 3/2, conv 5x5 pad 2, max-pool 3/2, three 3x3 pad 1 convs,
    ReLU after each, tapped after every ReLU), channel-normalised features, squared difference,
    a 1x1 linear layer per tap, spatial mean, summed over the five taps. All weights are
    non-trainable (the layer ignores a `trainable` argument); gradients flow to the inputs.
    The weights are read from saved_models/lpips_alex.npz after its sha256 check.

    Example:
        lpips = LPIPSAlex()
        d = lpips(a, b)  # a, b: (N, H, W, 3) in [0, 1], H, W >= 31 -> (N,)

    Reference:
        Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
        CVPR 2018; github.com/richzhang/PerceptualSimilarity (lpips 0.1.4).
    """

    def __init__(self, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        w = load_weights()
        # Explicit symmetric zero padding + 'valid' conv, as torch's Conv2d(padding=p): Keras
        # 'same' pads asymmetrically for the stride-4 first conv.
        self.pads = [keras.layers.ZeroPadding2D(pad, name=f"pad{i}")
                     for i, (_, _, _, pad, _) in enumerate(ALEX_CONVS, 1)]
        self.convs = [
            keras.layers.Conv2D(filters, kernel, strides=stride, padding="valid", activation="relu",
                                kernel_initializer=_pretrained(w[f"conv{i}_kernel"]),
                                bias_initializer=_pretrained(w[f"conv{i}_bias"]), trainable=False, name=f"conv{i}")
            for i, (filters, kernel, stride, _, _) in enumerate(ALEX_CONVS, 1)
        ]
        self.lins = [keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=_pretrained(w[f"lin{i}_kernel"]),
                                         trainable=False, name=f"lin{i}")
                     for i in range(1, len(ALEX_CONVS) + 1)]
        self.pool = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="pool")
        channels = 3
        for conv, lin, (filters, *_) in zip(self.convs, self.lins, ALEX_CONVS):
            conv.build((None, None, None, channels))
            lin.build((None, None, None, filters))
            channels = filters
        self.built = True

    def _features(self, x):
        taps = []
        for pad, conv, (*_, pool_first) in zip(self.pads, self.convs, ALEX_CONVS):
            if pool_first:
                x = self.pool(x)
            x = conv(pad(x))
            taps.append(x)
        return taps

    def _scaled(self, x):
        x = x * 2.0 - 1.0
        return (x - ops.convert_to_tensor(SHIFT, x.dtype)) / ops.convert_to_tensor(SCALE, x.dtype)

    def call(self, a, b):
        _check_pair(a, b)
        # Two backbone passes rather than one on concat([a, b]): when only one input needs a
        # gradient (the prediction in training), the other pass has no backward at all.
        total = 0.0
        for feat_a, feat_b, lin in zip(self._features(self._scaled(a)), self._features(self._scaled(b)), self.lins):
            diff = ops.square(_unit_normalise(feat_a) - _unit_normalise(feat_b))
            total = total + ops.mean(lin(diff), axis=(1, 2, 3))
        return total

    def compute_output_shape(self, a_shape, b_shape):
        return (a_shape[0],)


_SHARED: list[LPIPSAlex] = []
_SHARED_LOCK = threading.Lock()


def _shared_lpips() -> LPIPSAlex:
    """The layer behind `lpips_distance`, built once and eagerly, even when first needed inside a
    tf.function or a tf.distribute replica (MirroredStrategy traces replicas in threads)."""
    with _SHARED_LOCK:
        if not _SHARED:
            with tf.init_scope():
                _SHARED.append(LPIPSAlex(name="lpips_alex"))
    return _SHARED[0]


def lpips_distance(a, b):
    """LPIPS-Alex v0.1 distances (N,) between RGB images a, b in [0, 1], shape (N, H, W, 3).

    Equals `lpips.LPIPS(net='alex')(2a - 1, 2b - 1)`; unbatched (H, W, 3) input gives a scalar.
    """
    a_t, rank = as_float_tensor(a, "lpips_distance a")
    b_t, _ = as_float_tensor(b, "lpips_distance b")
    _check_pair(a_t, b_t)
    return restore_rank(_shared_lpips()(a_t, b_t), rank)


@keras.saving.register_keras_serializable(package="revisp_tf")
class LPIPSLoss(keras.losses.Loss):
    """LPIPS-Alex v0.1 as a Keras loss: per-example distances, reduced (mean) over the batch.

    Build it once and reuse it: it holds a frozen `LPIPSAlex` (about 2.5 M non-trainable
    weights). Under tf.distribute, build it inside `strategy.scope()`; for a custom loop pass
    `reduction="none"` (or "sum") and divide by the global batch size yourself, since the default
    mean is over the per-replica batch. Inputs are RGB in [0, 1], shape (N, H, W, 3), H, W >= 31;
    values are not range-checked, so a prediction slightly outside [0, 1] is fine.

    Example:
        loss_fn = LPIPSLoss()
        loss = loss_fn(y_true, y_pred)  # scalar
        model.compile(optimizer="adam", loss=LPIPSLoss())

    Reference: Zhang et al., CVPR 2018 (see `LPIPSAlex`).
    """

    def __init__(self, name="lpips", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lpips = LPIPSAlex(name=f"{name}_alex")

    def call(self, y_true, y_pred):
        return self.lpips(y_true, y_pred)
