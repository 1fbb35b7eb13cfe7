"""data.align: the shift of an ISP render (render) and the warp of a camera's own JPEG (warp), against known truths."""

import cv2
import numpy as np
import pytest

from revisp_tf.data.align import render, warp
from revisp_tf.isp.color_fit import srgb_to_linear


def _scene(h=96, w=128, seed=0):
    """A smooth random linear RGB scene with edges, in (0, 1)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.uniform(0.05, 0.9, (h // 8, w // 8, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0.02, 0.95)


def _rggb(linear):
    """The canonical RGGB mosaic of a linear RGB image (NumPy reference)."""
    m = np.empty(linear.shape[:2])
    m[0::2, 0::2], m[0::2, 1::2] = linear[0::2, 0::2, 0], linear[0::2, 1::2, 1]
    m[1::2, 0::2], m[1::2, 1::2] = linear[1::2, 0::2, 1], linear[1::2, 1::2, 2]
    return m


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, -2), (-2, 1)])
def test_render_shift_is_found_by_both_scorers(dy, dx):
    linear = _scene()
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(srgb_to_linear(srgb), linear, atol=1e-12)  # the one sRGB curve, inverted
    raw = _rggb(linear)
    # The RGB lies (dy, dx) off the mosaic: raw[y, x] is rgb[y + dy, x + dx].
    shifted = np.roll(srgb, (dy, dx), axis=(0, 1))
    for scores in (render.alignment_scores(shifted, raw, wb=(1.0, 1.0, 1.0)), render.gradient_alignment_scores(shifted, raw)):
        assert render.best_shift(scores) == (dy, dx)
        assert render.margin(scores) > 0.01


def test_camera_jpeg_warp_is_recovered():
    """A 'camera JPEG' made from the scene under a known crop + scale + rotation: the fitted map is within 0.5 px of it."""
    h, w = 480, 640
    linear = _scene(h, w, seed=3)
    identity = warp.identity_map((h, w))
    angle = np.deg2rad(0.7)
    a = 0.8 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    true = warp.CameraMap(np.hstack([a, [[-20.0], [-12.0]]]), (0.0,) * warp.RADIAL_TERMS, identity.center, identity.norm)
    srgb8 = (np.clip(linear, 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8)
    camera = warp.simulate_camera_rgb(srgb8, true, (int(h * 0.7), int(w * 0.7)))
    lum = linear @ np.array([0.299, 0.587, 0.114])
    raw_half = (lum.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))) ** (1 / 2.2)
    rgb_lum = cv2.cvtColor(camera, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    coarse, _ = warp.coarse_map(raw_half, rgb_lum)
    fine, _ = warp.refine_map(raw_half, rgb_lum, coarse)
    ys, xs = np.mgrid[60 : h - 60 : 40, 60 : w - 60 : 40]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
    inside = ((true(pts) > 2) & (true(pts) < [camera.shape[1] - 3, camera.shape[0] - 3])).all(axis=1)
    assert inside.sum() > 50
    assert np.abs(fine(pts[inside]) - true(pts[inside])).max() < 0.5
