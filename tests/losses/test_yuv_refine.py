import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.losses.yuv_refine import yuv_bayer_loss

# Paper eq. 2, typed out here so the test does not trust the library's constant.
YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])


def np_yuv(packed):
    p = np.asarray(packed, np.float64)
    rgb = np.stack([p[..., 0], (p[..., 1] + p[..., 2]) / 2, p[..., 3]], axis=-1)
    return rgb @ YUV.T


def np_yuv_loss(a, b, norm):
    d = np_yuv(a) - np_yuv(b)
    e = np.abs(d) if norm == "l1" else d**2
    return e.reshape(len(a), -1).mean(1)


def _packed(shape, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape).astype(np.float32)
    return np.clip(gt + rng.normal(0, 0.05, shape), 0, 1).astype(np.float32), gt


@pytest.mark.parametrize("norm", ["l1", "l2"])
@pytest.mark.parametrize("shape", [(3, 16, 16, 4), (2, 252, 252, 4)])  # from 32x32 and 504x504 RGB
def test_matches_numpy(norm, shape):
    pred, gt = _packed(shape)
    want = np_yuv_loss(pred, gt, norm)
    np.testing.assert_allclose(yuv_bayer_loss(pred, gt, norm, reduction="none").numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(yuv_bayer_loss(pred, gt, norm).numpy(), want.mean(), rtol=1e-5)
    np.testing.assert_allclose(yuv_bayer_loss(pred[0], gt[0], norm, reduction="none").numpy(), want[0], rtol=1e-5)


def test_only_the_green_average_matters():
    pred, gt = _packed((2, 8, 10, 4), seed=1)
    moved = pred.copy()
    delta = 0.1 * (pred[..., 1] - 0.5)
    moved[..., 1] -= delta
    moved[..., 2] += delta
    for norm in ("l1", "l2"):
        np.testing.assert_allclose(
            yuv_bayer_loss(moved, gt, norm).numpy(), yuv_bayer_loss(pred, gt, norm).numpy(), rtol=1e-5
        )
    assert yuv_bayer_loss(gt, gt).numpy() == 0.0


def test_gradient_matches_analytic_and_is_finite():
    pred, gt = _packed((2, 6, 6, 4), seed=2)
    p = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(p)
        loss = yuv_bayer_loss(p, gt, "l2")
    grad = tape.gradient(loss, p).numpy()
    # d/dp of mean(|M d|^2) over N*h*w*3 entries: 2 (M^T M d) / count, greens sharing the G column half each.
    d = np_yuv(pred) - np_yuv(gt)
    g_rgb = 2 * (d @ YUV) / d.size
    want = np.stack([g_rgb[..., 0], g_rgb[..., 1] / 2, g_rgb[..., 1] / 2, g_rgb[..., 2]], axis=-1)
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-9)
    for a, b in ((np.zeros_like(pred), np.zeros_like(pred)), (pred, 1 - pred)):
        for norm in ("l1", "l2"):
            p = tf.constant(a)
            with tf.GradientTape() as tape:
                tape.watch(p)
                loss = yuv_bayer_loss(p, b, norm)
            assert np.all(np.isfinite(tape.gradient(loss, p).numpy()))


def test_bad_arguments_raise():
    pred, gt = _packed((1, 4, 4, 4))
    with pytest.raises(ValueError, match="norm"):
        yuv_bayer_loss(pred, gt, "huber")
    with pytest.raises(ValueError, match="4 channels"):
        yuv_bayer_loss(pred[..., :3], gt[..., :3])
    with pytest.raises(ValueError, match="shapes differ"):
        yuv_bayer_loss(pred, gt[:, :2])
