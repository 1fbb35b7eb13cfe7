"""Calibration data of an int8 export: images of the target camera (or scikit-image's photos) and their exposure bracket."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import keras
import numpy as np
import skimage.data
import tensorflow as tf

from revisp_tf.io.images import read_rgb
from revisp_tf.isp.color import gamma, inverse_smoothstep, smoothstep
from revisp_tf.isp.unprocess import GAMMA, gamma_expansion
from revisp_tf.models.inference_form import fusion_parts
from revisp_tf.models.reverse_isp import has_global_stage

# Photos scikit-image ships (no download), the default calibration and check images.
_CALIBRATION_SOURCES = ("astronaut", "coffee", "chelsea", "rocket")
# A dual net's int8 calibration also sees each image re-exposed by these stops (`exposure_bracket`).
# Calibrated on the dark P9 frame only, tested on the bright one, int8 was 1.58 dB below Keras (and
# 2.31 dB above it with the other seed): ranges the test frame overran; with the bracket 0.18 / 0.16.
CALIBRATION_STOPS = (-2.0, -1.0, 1.0, 2.0)


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre crop to `size`, after an upscale if the image is smaller."""
    h, w = size
    scale = max(h / img.shape[0], w / img.shape[1], 1.0)
    if scale > 1.0:
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w], np.float32)


def check_size(size) -> tuple[int, int] | None:
    """A static input size (H, W), positive and even, or None (dynamic); ValueError otherwise."""
    if size is None:
        return None
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size: expected (height, width) or None for dynamic, got {size!r}") from None
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise ValueError(f"size: expected positive even height and width (whole 2x2 CFA tiles), got {h}x{w}")
    return h, w


def calibration_images(size=(504, 504), count: int = 8, paths: Iterable | None = None) -> list[np.ndarray]:
    """(H, W, 3) float32 RGB images: the given image files, or crops of scikit-image's sample photos.

    The generated ones are brightened by gains up to 2x so blown-out highlights (mask on) are
    represented, as in phone shots.
    """
    size = check_size(size) or (504, 504)
    if paths is not None:
        return [_fit(read_rgb(p), size) for p in list(paths)[:count]]
    images = []
    for i in range(count):
        photo = getattr(skimage.data, _CALIBRATION_SOURCES[i % len(_CALIBRATION_SOURCES)])()[..., :3]
        rgb = photo.astype(np.float32) / 255.0
        gain = 1.0 + i / max(count - 1, 1)
        images.append(np.clip(_fit(rgb, size) * gain, 0.0, 1.0))
    return images


def exposure_bracket(images: Iterable[np.ndarray], stops=CALIBRATION_STOPS) -> list[np.ndarray]:
    """The images, then each re-exposed by each stop: Brooks et al.'s inverse tone map and gamma, x 2**stop, clip, forward.

    The same photo as the camera would have rendered it brighter or darker (highlights clip, as in
    `isp.process`), so int8 ranges calibrated on a few frames cover the camera's other exposures.
    """
    images = [np.asarray(img, np.float32) for img in images]
    linear = [gamma_expansion(inverse_smoothstep(img)) for img in images]
    return images + [np.asarray(smoothstep(gamma(tf.clip_by_value(lin * 2.0**stop, 0.0, 1.0), 1.0 / GAMMA)))
                     for stop in stops for lin in linear]


def as_calibration_images(data, size) -> list[np.ndarray]:
    """Validated float32 (H, W, 3) images from arrays or paths, fitted to a static `size`."""
    images = []
    for item in data:
        img = read_rgb(item) if isinstance(item, (str, Path)) else np.asarray(item, np.float32)
        if img.ndim == 4 and img.shape[0] == 1:
            img = img[0]
        if img.ndim != 3 or img.shape[-1] != 3 or img.shape[0] % 2 or img.shape[1] % 2:
            raise ValueError(f"representative/check image: expected (H, W, 3) with H and W even, got {img.shape}")
        if not (img.min() >= 0.0 and img.max() <= 1.0):
            raise ValueError(f"representative/check image: expected values in [0, 1], got {img.min():.4g}..{img.max():.4g}")
        images.append(_fit(img, size) if size else np.ascontiguousarray(img, np.float32))
    if not images:
        raise ValueError("representative/check data: expected at least one image")
    return images


def default_calibration_stops(model: keras.Model) -> tuple[float, ...]:
    """The int8 calibration's exposure bracket unless told: CALIBRATION_STOPS for a plain dual net, else none.

    Measured on the P9 pairs (mobile/README.md, "int8 in dB"): the bracket brought the plain dual
    net's four int8 runs within 0.18 dB of Keras (from up to 2.31 dB), but cost the plain single net
    up to 1.2 dB (its ranges widen for exposures it never meets). A global-stage model stayed within
    0.41 dB without it, and its re-exposed copies would need their own frames' contexts.
    """
    return CALIBRATION_STOPS if fusion_parts(model) is not None and not has_global_stage(model) else ()
