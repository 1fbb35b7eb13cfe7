import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.isp import bayer
from revisp_tf.isp import unprocess as up

# Independent NumPy reference of Brooks et al.'s inverse ISP, written from the paper's formulas.
SRGB_TO_XYZ_D65 = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


def np_inverse_smoothstep(y):
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def np_gamma_expansion(x):
    return np.maximum(x, 1e-8) ** 2.2


def np_apply_ccm(x, ccm):
    return np.einsum("ij,...j->...i", np.asarray(ccm), x)


def np_safe_invert_gains(x, rgb_gain, red_gain, blue_gain):
    inv = np.array([1.0 / red_gain, 1.0, 1.0 / blue_gain]) / rgb_gain
    mask = (np.maximum(x.mean(axis=-1, keepdims=True) - 0.9, 0.0) / 0.1) ** 2
    return x * np.maximum(mask + (1.0 - mask) * inv, inv)


def np_unprocess(rgb, p):
    x = np_apply_ccm(np_gamma_expansion(np_inverse_smoothstep(rgb.astype(np.float64))), p.rgb2cam)
    return np.clip(np_safe_invert_gains(x, p.rgb_gain, p.red_gain, p.blue_gain), 0.0, 1.0)


@pytest.fixture
def rgb():
    return np.random.default_rng(3).random((2, 6, 8, 3)).astype(np.float32)


def test_stages_match_numpy(rgb):
    p = up.sample_params(11)
    np.testing.assert_allclose(up.inverse_smoothstep(rgb).numpy(), np_inverse_smoothstep(rgb), atol=1e-6)
    np.testing.assert_allclose(up.gamma_expansion(rgb).numpy(), np_gamma_expansion(rgb), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(up.apply_ccm(rgb, p.rgb2cam).numpy(), np_apply_ccm(rgb, p.rgb2cam), atol=1e-6)
    # Bright inputs so the highlight fade (gray > 0.9) is exercised.
    bright = 0.8 + 0.2 * rgb
    np.testing.assert_allclose(
        up.safe_invert_gains(bright, p).numpy(),
        np_safe_invert_gains(bright, p.rgb_gain, p.red_gain, p.blue_gain),
        atol=1e-6,
    )


def test_unprocess_matches_numpy_for_numpy_tensor_batched_and_single(rgb, synthetic_rgb):
    p = up.sample_params(5)
    for x in (rgb, synthetic_rgb):
        want = np_unprocess(x, p)
        np.testing.assert_allclose(up.unprocess(x, p).numpy(), want, atol=2e-6)
        np.testing.assert_allclose(up.unprocess(tf.constant(x), p).numpy(), want, atol=2e-6)
        np.testing.assert_allclose(up.unprocess(x[0], p).numpy(), want[0], atol=2e-6)
        np.testing.assert_allclose(up.unprocess_to_bayer(x, p).numpy(), bayer.mosaic(want).numpy(), atol=2e-6)
        np.testing.assert_allclose(
            up.unprocess_to_bayer(x, p, "GRBG").numpy(), bayer.mosaic(want, "GRBG").numpy(), atol=2e-6
        )


def test_unprocess_inside_dataset_map_equals_eager(rgb):
    p = up.default_params()
    ds = tf.data.Dataset.from_tensor_slices(rgb).map(lambda x: up.unprocess_to_bayer(x, p))
    np.testing.assert_allclose(np.stack(list(ds.as_numpy_iterator())), up.unprocess_to_bayer(rgb, p).numpy(), atol=1e-7)


def test_white_stays_white_and_black_stays_black():
    p = up.sample_params(0)
    x = np.zeros((2, 2, 3), np.float32)
    x[0] = 1.0
    out = up.unprocess(x, p).numpy()
    np.testing.assert_allclose(out[0], 1.0, atol=1e-5)  # highlight-preserving: saturated stays saturated
    np.testing.assert_allclose(out[1], 0.0, atol=1e-6)


def test_default_params_is_the_mean_camera():
    p = up.default_params()
    assert (p.rgb_gain, p.red_gain, p.blue_gain) == pytest.approx((1 / 0.8, 2.15, 1.7))
    xyz2cam = np.mean(up.XYZ_TO_CAMS, axis=0)
    want = xyz2cam @ SRGB_TO_XYZ_D65
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(p.rgb2cam), want, atol=1e-12)
    np.testing.assert_allclose(np.asarray(p.rgb2cam).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p.cam2rgb @ np.asarray(p.rgb2cam), np.eye(3), atol=1e-12)
    assert up.default_params() == p


def test_sample_params_is_deterministic_and_has_the_paper_distribution():
    assert up.sample_params(7) == up.sample_params(7)
    assert up.sample_params((7, 1)) == up.sample_params((7, 1))
    assert up.sample_params(7) != up.sample_params(8)
    cams = [up.sample_params(s) for s in range(2000)]
    inv_rgb = np.array([1 / c.rgb_gain for c in cams])
    red = np.array([c.red_gain for c in cams])
    blue = np.array([c.blue_gain for c in cams])
    assert inv_rgb.mean() == pytest.approx(0.8, abs=0.01) and inv_rgb.std() == pytest.approx(0.1, abs=0.01)
    assert red.min() >= 1.9 and red.max() <= 2.4 and red.mean() == pytest.approx(2.15, abs=0.01)
    assert blue.min() >= 1.5 and blue.max() <= 1.9 and blue.mean() == pytest.approx(1.7, abs=0.01)
    m = np.array([c.rgb2cam for c in cams])
    np.testing.assert_allclose(m.sum(axis=2), 1.0, atol=1e-12)
    # Each matrix lies between the (row-normalised) single-camera extremes of the mix.
    singles = np.array([up.rgb2cam_from_weights(np.eye(4)[i]) for i in range(4)])
    assert np.all(m >= singles.min(axis=0) - 1e-9) and np.all(m <= singles.max(axis=0) + 1e-9)


def test_noise_levels_follow_the_log_log_line():
    assert up.sample_noise_levels(3) == up.sample_noise_levels(3)
    levels = np.array([up.sample_noise_levels(s) for s in range(2000)])
    shot, read = levels[:, 0], levels[:, 1]
    assert shot.min() >= 1e-4 and shot.max() <= 0.012
    resid = np.log(read) - (2.18 * np.log(shot) + 1.20)
    assert resid.mean() == pytest.approx(0.0, abs=0.02) and resid.std() == pytest.approx(0.26, abs=0.02)
    narrow = np.array([up.sample_noise_levels(s, (1e-4, 1e-3))[0] for s in range(200)])
    assert narrow.min() >= 1e-4 and narrow.max() <= 1e-3
    with pytest.raises(ValueError, match="shot_range"):
        up.sample_noise_levels(0, (0.0, 1e-3))


def test_add_noise_is_deterministic_with_the_right_variance():
    x = np.random.default_rng(0).random((64, 64, 4)).astype(np.float32)
    shot, read = 0.01, 1e-4
    a = up.add_noise(x, shot, read, seed=1).numpy()
    np.testing.assert_array_equal(a, up.add_noise(tf.constant(x), shot, read, seed=1).numpy())
    assert not np.array_equal(a, up.add_noise(x, shot, read, seed=2).numpy())
    z = (a - x) / np.sqrt(x * shot + read)
    assert abs(z.mean()) < 0.02 and z.std() == pytest.approx(1.0, abs=0.02)


def test_bad_input_raises():
    p = up.default_params()
    with pytest.raises(ValueError, match="3 channels"):
        up.unprocess(np.zeros((4, 4, 4), np.float32), p)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        up.unprocess(np.full((4, 4, 3), 2.0, np.float32), p)
    with pytest.raises(ValueError, match="invertible"):
        up.UnprocessParams(rgb2cam=np.ones((3, 3)), rgb_gain=1, red_gain=2, blue_gain=2)
    with pytest.raises(ValueError, match="red_gain"):
        up.UnprocessParams(rgb2cam=np.eye(3), rgb_gain=1, red_gain=-2, blue_gain=2)
    assert up.UnprocessParams(**p.to_dict()) == p
