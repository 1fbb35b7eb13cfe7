import numpy as np
import pytest
import tensorflow as tf

import revisp_tf.losses.lpips
from revisp_tf.losses import masked


def _batch(shape, seed=0):
    """Prediction, ground truth and a blocky binary mask (about a third overexposed)."""
    n, h, w, _ = shape
    rng = np.random.default_rng(seed)
    gt = rng.random(shape).astype(np.float32)
    pred = np.clip(gt + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    blocks = rng.random((n, -(-h // 8), -(-w // 8), 1)) < 0.35
    mask = np.kron(blocks, np.ones((1, 8, 8, 1)))[:, :h, :w].astype(np.float32)
    return pred, gt, mask


def np_gamma(x, g):
    return np.maximum(x.astype(np.float64), 1e-8) ** g


def np_l2(x, y):
    return ((np.asarray(x, np.float64) - y) ** 2).reshape(len(x), -1).mean(1)


def fake_lpips(a, b):
    """A stand-in perceptual distance (N,), so the mixes are testable without LPIPS weights."""
    return tf.reduce_mean(tf.sqrt(tf.square(a - b) + 1e-3), axis=[1, 2, 3])


def np_fake_lpips(a, b):
    return np.sqrt((np.asarray(a, np.float64) - b) ** 2 + 1e-3).reshape(len(a), -1).mean(1)


def np_mix(x, y, np_ms_ssim_l1):
    """Paper eq. 3/4 with the stand-in LPIPS."""
    return np_fake_lpips(x, y) + 0.05 * np_l2(x, y) + 0.75 * np_ms_ssim_l1(x, y)


def _outside_changed(pred, gt, mask, region, seed=9):
    """Copies of pred/gt with every pixel outside `region` replaced by fresh random values."""
    rng = np.random.default_rng(seed)
    outside = (mask == 0) if region == "oe" else (mask == 1)
    outside = np.broadcast_to(outside, pred.shape)
    return (np.where(outside, rng.random(pred.shape), pred).astype(np.float32),
            np.where(outside, rng.random(gt.shape), gt).astype(np.float32))


def test_mask_region_zeroes_outside_exactly():
    pred, _, mask = _batch((2, 16, 24, 3))
    np.testing.assert_array_equal(masked.mask_region(pred, mask, "oe").numpy(), pred * mask)
    np.testing.assert_array_equal(masked.mask_region(pred, mask, "noe").numpy(), pred * (1 - mask))
    np.testing.assert_array_equal(masked.mask_region(pred[0], mask[0], "noe").numpy(), pred[0] * (1 - mask[0]))
    with pytest.raises(ValueError, match="region"):
        masked.mask_region(pred, mask, "highlights")
    with pytest.raises(ValueError, match="1 channels"):
        masked.mask_region(pred, np.repeat(mask, 3, -1))


@pytest.mark.parametrize("region", ["oe", "noe"])
@pytest.mark.parametrize("gamma", [None, 1 / 3.6])
def test_l2_and_l2_masked_match_numpy(region, gamma):
    pred, gt, mask = _batch((3, 32, 32, 3), seed=1)
    w = mask if region == "oe" else 1 - mask
    g = (lambda t: np_gamma(t, gamma)) if gamma else (lambda t: t.astype(np.float64))
    want = np_l2(g(pred) * w, g(gt) * w)
    got = masked.l2_masked(pred, gt, mask, region, gamma=gamma, reduction="none").numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(masked.l2_masked(pred, gt, mask, region, gamma=gamma).numpy(), want.mean(), rtol=1e-5)
    np.testing.assert_allclose(masked.l2(pred, gt, gamma=gamma, reduction="none").numpy(), np_l2(g(pred), g(gt)),
                               rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (1, 504, 504, 3)])
def test_oe_and_noe_losses_match_numpy(shape, np_ms_ssim_l1):
    pred, gt, mask = _batch(shape, seed=2)
    oe = masked.oe_loss(pred, gt, mask, reduction="none").numpy()
    np.testing.assert_allclose(oe, np_ms_ssim_l1(pred * mask, gt * mask), rtol=1e-5)

    seen = []

    def recording_lpips(a, b):
        seen.append((a.numpy(), b.numpy()))
        return fake_lpips(a, b)

    g = 1 / 3.6
    noe = masked.noe_loss(pred, gt, mask, lpips_fn=recording_lpips, gamma=g, reduction="none").numpy()
    xp, yp = np_gamma(pred, g) * (1 - mask), np_gamma(gt, g) * (1 - mask)
    np.testing.assert_allclose(noe, np_mix(xp, yp, np_ms_ssim_l1), rtol=1e-5)
    np.testing.assert_allclose(seen[0][0], xp, rtol=1e-6, atol=1e-7)  # LPIPS sees gamma'd, NOE-zeroed images
    np.testing.assert_allclose(seen[0][1], yp, rtol=1e-6, atol=1e-7)


def test_noe_without_gamma_and_p20_match_numpy(np_ms_ssim_l1):
    pred, gt, mask = _batch((2, 40, 32, 3), seed=3)
    w = 1 - mask
    got = masked.noe_loss(pred, gt, mask, lpips_fn=fake_lpips, reduction="none").numpy()
    np.testing.assert_allclose(got, np_mix(pred * w, gt * w, np_ms_ssim_l1), rtol=1e-5)
    p20 = masked.p20_loss(pred, gt, lpips_fn=fake_lpips, reduction="none").numpy()
    want = np_mix(np_gamma(pred, 1 / 3.6), np_gamma(gt, 1 / 3.6), np_ms_ssim_l1)
    np.testing.assert_allclose(p20, want, rtol=1e-5)
    np.testing.assert_allclose(masked.p20_loss(pred, gt, lpips_fn=fake_lpips).numpy(), p20.mean(), rtol=1e-6)


def test_default_lpips_is_the_package_distance(monkeypatch):
    pred, gt, mask = _batch((2, 32, 32, 3), seed=4)
    monkeypatch.setattr(revisp_tf.losses.lpips, "lpips_distance", fake_lpips)
    np.testing.assert_allclose(
        masked.noe_loss(pred, gt, mask).numpy(), masked.noe_loss(pred, gt, mask, lpips_fn=fake_lpips).numpy()
    )
    with pytest.raises(ValueError, match="per-example"):
        masked.p20_loss(pred, gt, lpips_fn=lambda a, b: tf.reduce_mean(fake_lpips(a, b)))


def test_float16_lpips_distances_as_mixed_precision_gives_them(np_ms_ssim_l1):
    """Under mixed_float16 the LPIPS net returns float16 distances; the mix takes them (it raised before)."""
    pred, gt, mask = _batch((2, 40, 32, 3), seed=5)
    w = 1 - mask
    half = lambda a, b: tf.cast(fake_lpips(a, b), tf.float16)  # noqa: E731
    got = masked.noe_loss(pred, gt, mask, lpips_fn=half, reduction="none").numpy()
    want = np_mix(pred * w, gt * w, np_ms_ssim_l1)
    np.testing.assert_allclose(got, want, rtol=1e-3)  # float16 keeps 11 bits of the LPIPS term
    assert got.dtype == np.float32


@pytest.mark.parametrize("region", ["oe", "noe"])
def test_pixels_outside_the_region_change_nothing(region):
    pred, gt, mask = _batch((2, 32, 40, 3), seed=5)
    pred2, gt2 = _outside_changed(pred, gt, mask, region)
    assert np.any(pred2 != pred) and np.any(gt2 != gt)
    losses = {
        "l2_masked": lambda p, g: masked.l2_masked(p, g, mask, region, gamma=1 / 3.6, reduction="none"),
        "oe/noe": (lambda p, g: masked.oe_loss(p, g, mask, reduction="none")) if region == "oe" else
                  (lambda p, g: masked.noe_loss(p, g, mask, fake_lpips, gamma=1 / 3.6, reduction="none")),
    }
    outside = np.broadcast_to((mask == 0) if region == "oe" else (mask == 1), pred.shape)
    for name, fn in losses.items():
        np.testing.assert_array_equal(fn(pred, gt).numpy(), fn(pred2, gt2).numpy(), err_msg=name)
        p = tf.constant(pred2)
        with tf.GradientTape() as tape:
            tape.watch(p)
            loss = tf.reduce_sum(fn(p, gt2))
        grad = tape.gradient(loss, p).numpy()
        assert np.all(grad[outside] == 0) and np.any(grad[~outside] != 0), name


def test_gradients_finite_for_zero_constant_and_anticorrelated_inputs():
    pred, gt, mask = _batch((2, 24, 24, 3), seed=6)
    cases = {"anti": (pred, 1 - pred), "zeros": (np.zeros_like(pred), np.zeros_like(pred)),
             "constants": (np.full_like(pred, 0.3), np.full_like(pred, 0.9))}
    for name, (a, b) in cases.items():
        for fn in (lambda p: masked.noe_loss(p, b, mask, fake_lpips, gamma=1 / 3.6),
                   lambda p: masked.oe_loss(p, b, mask),
                   lambda p: masked.p20_loss(p, b, fake_lpips)):
            p = tf.constant(a)
            with tf.GradientTape() as tape:
                tape.watch(p)
                loss = fn(p)
            grad = tape.gradient(loss, p).numpy()
            assert np.isfinite(loss.numpy()) and np.all(np.isfinite(grad)), name


def test_bad_arguments_raise():
    pred, gt, mask = _batch((1, 16, 16, 3))
    with pytest.raises(ValueError, match="gamma"):
        masked.noe_loss(pred, gt, mask, fake_lpips, gamma=2.2)
    with pytest.raises(ValueError, match="shapes differ"):
        masked.oe_loss(pred, gt[:, :8], mask)
    with pytest.raises(ValueError, match="reduction"):
        masked.l2(pred, gt, reduction="sum")
