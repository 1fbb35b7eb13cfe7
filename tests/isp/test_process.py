import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.isp import bayer
from revisp_tf.isp import process as pr
from revisp_tf.isp import unprocess as up

RGGB = "RGGB"
COLOR = {"R": 0, "G": 1, "B": 2}


def np_full_mosaic(packed):
    """Packed RGGB (h, w, 4) -> (H, W) mosaic and (H, W) colour index, pixel by pixel."""
    h, w = packed.shape[:2]
    plane = np.zeros((2 * h, 2 * w))
    colour = np.zeros((2 * h, 2 * w), int)
    for y in range(2 * h):
        for x in range(2 * w):
            pos = 2 * (y % 2) + x % 2
            plane[y, x] = packed[y // 2, x // 2, pos]
            colour[y, x] = COLOR[RGGB[pos]]
    return plane, colour


def np_demosaic(packed):
    """Bilinear by definition: a missing colour is the mean of its nearest same-colour samples (mirror border)."""
    plane, colour = np_full_mosaic(packed)
    hh, ww = plane.shape
    mirror = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)  # noqa: E731
    out = np.zeros((hh, ww, 3))
    for y in range(hh):
        for x in range(ww):
            for c in range(3):
                if colour[y, x] == c:
                    out[y, x, c] = plane[y, x]
                    continue
                for ring in (((0, 1), (0, -1), (1, 0), (-1, 0)), ((1, 1), (1, -1), (-1, 1), (-1, -1))):
                    vals = [
                        plane[mirror(y + dy, hh), mirror(x + dx, ww)]
                        for dy, dx in ring
                        if colour[mirror(y + dy, hh), mirror(x + dx, ww)] == c
                    ]
                    if vals:
                        out[y, x, c] = np.mean(vals)
                        break
    return out


def np_process(raw, p, exposure=1.0):
    gains = p.rgb_gain * np.array([p.red_gain, 1.0, p.blue_gain])
    x = raw.astype(np.float64) * exposure
    if x.shape[-1] == 4:
        x = np.clip(x * gains[[0, 1, 1, 2]], 0, 1)
        x = np_demosaic(x)
    else:
        x = np.clip(x * gains, 0, 1)
    x = np.clip(np.einsum("ij,...j->...i", np.linalg.inv(np.asarray(p.rgb2cam)), x), 0, 1)
    x = np.maximum(x, 1e-8) ** (1 / 2.2)
    return 3 * x**2 - 2 * x**3


@pytest.fixture
def packed():
    return np.random.default_rng(4).random((2, 4, 6, 4)).astype(np.float32)


def test_demosaic_matches_definition_and_keeps_samples(packed):
    got = pr.demosaic_bilinear(packed).numpy()
    for i in range(2):
        np.testing.assert_allclose(got[i], np_demosaic(packed[i]), atol=1e-6)
    # Exact at every sample site: mosaicking the result gives the input back.
    np.testing.assert_allclose(bayer.mosaic(got).numpy(), packed, atol=1e-7)
    np.testing.assert_allclose(pr.demosaic_bilinear(packed[0]).numpy(), got[0], atol=1e-7)


def test_process_matches_numpy_for_bayer_and_demosaiced(packed):
    p = up.sample_params(2)
    for i in range(2):
        np.testing.assert_allclose(pr.process(packed[i], p).numpy(), np_process(packed[i], p), atol=2e-5)
    rgb = np.random.default_rng(5).random((2, 6, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(pr.process(rgb, p).numpy(), np_process(rgb, p), atol=2e-5)
    np.testing.assert_allclose(pr.process(tf.constant(rgb), p).numpy(), np_process(rgb, p), atol=2e-5)


def test_exposure_scalar_and_per_image(packed):
    p = up.default_params()
    got = pr.process(packed, p, exposure=[0.5, 2.0]).numpy()
    np.testing.assert_allclose(got[0], np_process(packed[0], p, 0.5), atol=2e-5)
    np.testing.assert_allclose(got[1], np_process(packed[1], p, 2.0), atol=2e-5)
    np.testing.assert_allclose(pr.process(packed, p, exposure=1.7).numpy()[1], np_process(packed[1], p, 1.7), atol=2e-5)
    with pytest.raises(ValueError, match="exposure"):
        pr.process(packed, p, exposure=[1.0, 2.0, 3.0])


def test_process_inside_dataset_map_equals_eager(packed):
    p = up.sample_params(9)
    ds = tf.data.Dataset.from_tensor_slices(packed).map(lambda x: pr.process(x, p, exposure=1.5))
    np.testing.assert_allclose(
        np.stack(list(ds.as_numpy_iterator())), pr.process(packed, p, exposure=1.5).numpy(), atol=1e-6
    )


def _unclipped(rgb, p):
    """Pixels that unprocess neither clips nor fades: linear camera values in [0, 1] and gray below 0.9."""
    x = np.einsum(
        "ij,...j->...i",
        np.asarray(p.rgb2cam),
        np.maximum(0.5 - np.sin(np.arcsin(1 - 2 * rgb.astype(np.float64)) / 3), 1e-8) ** 2.2,
    )
    gains = p.rgb_gain * np.array([p.red_gain, 1.0, p.blue_gain])
    return (x.mean(-1) <= 0.9) & np.all((x >= 0) & (x / gains <= 1), axis=-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_process_inverts_unprocess_on_unclipped_pixels(seed, synthetic_rgb):
    p = up.sample_params(seed)
    rgb = np.concatenate([synthetic_rgb, np.random.default_rng(seed).random(synthetic_rgb.shape).astype(np.float32)])
    back = pr.process(up.unprocess(rgb, p), p).numpy()
    ok = _unclipped(rgb, p)
    assert ok.mean() > 0.8
    err = np.abs(back - rgb)[ok]
    assert err.max() < 2e-4, err.max()
    # Saturated white comes back white (the highlight-preserving inverse gains).
    np.testing.assert_allclose(back[:2, 4:10, 6:14], 1.0, atol=1e-4)


def test_unprocess_inverts_process_at_bayer_sites(packed):
    # Bilinear demosaic keeps every sample, so mosaic(unprocess(process(raw))) = raw wherever nothing clips.
    p = up.default_params()
    raw = 0.3 * packed  # dim enough that no gain clips
    back = bayer.mosaic(up.unprocess(pr.process(raw, p), p)).numpy()
    gains = p.rgb_gain * np.array([p.red_gain, 1.0, p.blue_gain])
    for i in range(2):
        srgb = np.einsum("ij,...j->...i", p.cam2rgb, np_demosaic(raw[i] * gains[[0, 1, 1, 2]]))
        ok = (
            bayer.mosaic(
                np.all((srgb >= 0) & (srgb <= 1), axis=-1, keepdims=True).repeat(3, -1).astype(np.float32)
            ).numpy()
            > 0
        )
        assert ok.mean() > 0.3
        np.testing.assert_allclose(back[i][ok], raw[i][ok], atol=1e-4)


def test_visualize_raw_matches_numpy(packed):
    got = pr.visualize_raw(packed).numpy()
    for i in range(2):
        m = packed[i].mean(axis=(0, 1))
        g = (m[1] + m[2]) / 2
        gains = np.array([g / m[0], 1, 1, g / m[3]])
        want = np.clip(np.maximum(np_demosaic(np.clip(packed[i] * gains, 0, 1)), 1e-8) ** (1 / 2.2), 0, 1)
        np.testing.assert_allclose(got[i], want, atol=2e-5)
    given = pr.visualize_raw(packed[0], wb_gains=(2.0, 1.5)).numpy()
    want = np.maximum(np_demosaic(np.clip(packed[0] * [2.0, 1, 1, 1.5], 0, 1)), 1e-8) ** (1 / 2.2)
    np.testing.assert_allclose(given, want, atol=2e-5)
    assert got.min() >= 0 and got.max() <= 1


def test_bad_input_raises():
    with pytest.raises(ValueError, match="4 channels"):
        pr.process(np.zeros((4, 4, 2), np.float32), up.default_params())
    with pytest.raises(ValueError, match="4 channels"):
        pr.visualize_raw(np.zeros((4, 4, 3), np.float32))
