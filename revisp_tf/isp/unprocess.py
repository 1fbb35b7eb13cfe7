"""Classical inverse ISP (Brooks et al. 2019, "Unprocessing images for learned raw denoising").

sRGB in [0, 1] -> linear camera RGB, step by step: inverse tone curve, gamma
expansion, sRGB -> camera colour matrix, inverse white balance and brightening
(keeping highlights white), clip; then an optional CFA mosaic. `default_params()`
is the mean camera of the paper's sampler and serves as the UPI baseline;
`sample_params(seed)` draws a random camera for synthetic data.
Reference: https://arxiv.org/abs/1811.11127 (google-research/unprocessing).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank
from revisp_tf.isp.bayer import CANONICAL_CFA, mosaic
from revisp_tf.isp.color import gamma, inverse_smoothstep

# XYZ -> camera matrices of four cameras, from the paper's sampler; a random camera is a convex mix of them.
XYZ_TO_CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
    ]
)
# Linear sRGB (D65) -> XYZ.
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
GAMMA = 2.2
# Mean of gray above which inverse gains fade out, so saturated white stays saturated.
HIGHLIGHT_INFLECTION = 0.9
RGB_GAIN_MEAN, RGB_GAIN_STD = 0.8, 0.1  # rgb_gain = 1 / N(mean, std)
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)
BROOKS_SHOT_RANGE = (1e-4, 0.012)  # the paper's (low-light) shot-noise range
# log(read) = slope * log(shot) + intercept + N(0, std): the paper's fit to real sensors.
READ_NOISE_SLOPE, READ_NOISE_INTERCEPT, READ_NOISE_STD = 2.18, 1.20, 0.26


@dataclasses.dataclass(frozen=True)
class UnprocessParams:
    """A camera for the simple ISP.

    Args:
      rgb2cam: 3x3 linear sRGB -> camera RGB matrix, rows summing to 1 (so gray stays gray).
      rgb_gain: global brightening the forward ISP applies (the inverse divides by it).
      red_gain: white-balance gain of the red channel (green is 1).
      blue_gain: white-balance gain of the blue channel.
    """

    rgb2cam: tuple[tuple[float, float, float], ...]
    rgb_gain: float
    red_gain: float
    blue_gain: float

    def __post_init__(self):
        m = np.asarray(self.rgb2cam, np.float64)
        if m.shape != (3, 3) or not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-8:
            raise ValueError(f"UnprocessParams: rgb2cam must be an invertible finite 3x3 matrix, got {m.tolist()}")
        for name in ("rgb_gain", "red_gain", "blue_gain"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"UnprocessParams: {name} must be positive, got {getattr(self, name)}")
        object.__setattr__(self, "rgb2cam", tuple(tuple(float(v) for v in row) for row in m))
        for name in ("rgb_gain", "red_gain", "blue_gain"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def cam2rgb(self) -> np.ndarray:
        """3x3 camera RGB -> linear sRGB matrix (the inverse of rgb2cam)."""
        return np.linalg.inv(np.asarray(self.rgb2cam, np.float64))

    @property
    def gains(self) -> np.ndarray:
        """Per-channel (R, G, B) gains of the forward ISP: white balance times brightening."""
        return self.rgb_gain * np.array([self.red_gain, 1.0, self.blue_gain])

    def to_dict(self) -> dict:
        """JSON-ready dict; `UnprocessParams(**d)` rebuilds it."""
        return {
            "rgb2cam": [list(r) for r in self.rgb2cam],
            "rgb_gain": self.rgb_gain,
            "red_gain": self.red_gain,
            "blue_gain": self.blue_gain,
        }


def rgb2cam_from_weights(weights) -> np.ndarray:
    """Convex mix of XYZ_TO_CAMS with `weights`, times sRGB -> XYZ, rows normalised to sum 1."""
    w = np.asarray(weights, np.float64)
    xyz2cam = np.tensordot(w / w.sum(), XYZ_TO_CAMS, axes=1)
    rgb2cam = xyz2cam @ SRGB_TO_XYZ
    return rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)


def default_params() -> UnprocessParams:
    """The mean camera of `sample_params`: equal CCM mix, mean gains (the UPI baseline)."""
    return UnprocessParams(
        rgb2cam=rgb2cam_from_weights(np.ones(len(XYZ_TO_CAMS))),
        rgb_gain=1.0 / RGB_GAIN_MEAN,
        red_gain=float(np.mean(RED_GAIN_RANGE)),
        blue_gain=float(np.mean(BLUE_GAIN_RANGE)),
    )


def sample_params(seed) -> UnprocessParams:
    """A random camera, deterministic given `seed` (an int or a sequence of ints)."""
    rng = np.random.default_rng(seed)
    return UnprocessParams(
        rgb2cam=rgb2cam_from_weights(rng.uniform(1e-8, 1.0, size=len(XYZ_TO_CAMS))),
        rgb_gain=1.0 / rng.normal(RGB_GAIN_MEAN, RGB_GAIN_STD),
        red_gain=rng.uniform(*RED_GAIN_RANGE),
        blue_gain=rng.uniform(*BLUE_GAIN_RANGE),
    )


def read_noise_from_shot(shot: float, offset: float = 0.0) -> float:
    """Read-noise variance on the paper's log-log line through `shot`, moved by `offset` in log space."""
    return float(np.exp(READ_NOISE_SLOPE * np.log(shot) + READ_NOISE_INTERCEPT + offset))


def sample_noise_levels(seed, shot_range: tuple[float, float] = BROOKS_SHOT_RANGE) -> tuple[float, float]:
    """(shot, read) noise variances: shot log-uniform in `shot_range`, read from the log-log line."""
    lo, hi = shot_range
    if not 0 < lo <= hi:
        raise ValueError(f"shot_range: expected 0 < low <= high, got {shot_range}")
    rng = np.random.default_rng(seed)
    shot = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return shot, read_noise_from_shot(shot, rng.normal(0.0, READ_NOISE_STD))


def add_noise(bayer, shot: float, read: float, seed: int):
    """Adds heteroscedastic Gaussian noise, variance = shot * x + read; deterministic given `seed`."""
    x = tf.convert_to_tensor(bayer, tf.float32)
    std = tf.sqrt(tf.maximum(x, 0.0) * float(shot) + float(read))
    seed_pair = tf.constant([int(seed), 0], tf.int64)
    noise = tf.random.stateless_normal(tf.shape(x), seed=seed_pair, dtype=tf.float32)
    return x + std * noise


def gamma_expansion(image):
    """sRGB-like gamma -> linear: max(x, 1e-8) ** 2.2."""
    return gamma(image, GAMMA)


def apply_ccm(image, ccm):
    """(…, 3) @ ccm^T: applies a 3x3 colour matrix to the last axis."""
    x = tf.convert_to_tensor(image, tf.float32)
    return tf.tensordot(x, tf.constant(np.asarray(ccm, np.float32).T), axes=1)


def safe_invert_gains(image, params: UnprocessParams):
    """Divides by the forward gains, fading them out towards white so highlights are not dimmed."""
    x = tf.convert_to_tensor(image, tf.float32)
    inv = tf.constant((1.0 / params.gains).astype(np.float32))
    gray = tf.reduce_mean(x, axis=-1, keepdims=True)
    mask = tf.square(tf.maximum(gray - HIGHLIGHT_INFLECTION, 0.0) / (1.0 - HIGHLIGHT_INFLECTION))
    # Where a forward gain is below 1 (inverse above 1) the fade towards 1 would dim the pixel: keep the plain inverse.
    return x * tf.maximum(mask + (1.0 - mask) * inv, inv)


def unprocess(rgb, params: UnprocessParams):
    """sRGB (…, H, W, 3) in [0, 1] -> demosaiced linear camera RGB in [0, 1]."""
    x, rank = as_float_tensor(rgb, "rgb")
    check_channels(x, 3, "rgb")
    x = gamma_expansion(inverse_smoothstep(x))
    x = apply_ccm(x, params.rgb2cam)
    x = safe_invert_gains(x, params)
    return restore_rank(tf.clip_by_value(x, 0.0, 1.0), rank)


def unprocess_to_bayer(rgb, params: UnprocessParams, pattern: str = CANONICAL_CFA):
    """sRGB (…, H, W, 3) in [0, 1] -> packed (…, H/2, W/2, 4) linear bayer with CFA `pattern`."""
    return mosaic(unprocess(rgb, params), pattern)
