from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.losses.msssim_l1 import ms_ssim_l1, scale_maps

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "msssim_l1_torch.npz"


def _pair(shape, seed=0, noise=0.1):
    """Blocky content plus noise, and a noisy copy: SSIM terms well away from 0 and 1."""
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    base = rng.random((n, -(-h // 4), -(-w // 4), c))
    x = np.kron(base, np.ones((1, 4, 4, 1)))[:, :h, :w] + rng.normal(0, 0.05, shape)
    x = np.clip(x, 0, 1).astype(np.float32)
    y = np.clip(x + rng.normal(0, noise, shape), 0, 1).astype(np.float32)
    return x, y


def _loss_and_grad(x, y, **kw):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = ms_ssim_l1(xt, y, **kw)
    return loss.numpy(), tape.gradient(loss, xt).numpy()


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (1, 504, 504, 3), (1, 8, 12, 3)])
def test_matches_numpy_reference(shape, np_ms_ssim_l1):
    x, y = _pair(shape)
    want = np_ms_ssim_l1(x, y)
    got = ms_ssim_l1(x, y, reduction="none").numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(ms_ssim_l1(x, y).numpy(), want.mean(), rtol=1e-5)


def test_configurable_alpha_compensation_range_and_layout(np_ms_ssim_l1):
    x, y = _pair((2, 40, 36, 4), seed=1)
    kw = dict(alpha=0.84, compensation=1.0, sigmas=(1.0, 3.0), data_range=2.0)
    want = np_ms_ssim_l1(2 * x, 2 * y, layout="per_channel", **kw)
    got = ms_ssim_l1(2 * x, 2 * y, layout="per_channel", reduction="none", **kw).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    x3, y3 = x[..., :3], y[..., :3]
    np.testing.assert_allclose(
        ms_ssim_l1(x3, y3, reduction="none", **kw).numpy(), np_ms_ssim_l1(x3, y3, **kw), rtol=1e-5
    )


def test_authors_layout_mixes_channels_and_scales():
    assert scale_maps(3, 5) == [(0, 0), (0, 0), (0, 0), (0, 1), (0, 1), (1, 1), (1, 2), (1, 2)] + [
        (1, 2), (1, 3), (2, 3), (2, 3), (2, 4), (2, 4), (2, 4)
    ]
    x, y = _pair((1, 32, 32, 3), seed=2)
    assert abs(ms_ssim_l1(x, y).numpy() - ms_ssim_l1(x, y, layout="per_channel").numpy()) > 1e-3


def test_matches_pytorch_fixture():
    """Stored outputs of the authors' loss computed with torch's grouped conv2d (float64)."""
    f = np.load(FIXTURE)
    for name in ("random", "anti"):
        x, y = f[f"{name}_x"], f[f"{name}_y"]
        np.testing.assert_allclose(ms_ssim_l1(x, y, reduction="none").numpy(), f[f"{name}_loss"], rtol=1e-5)
        _, grad = _loss_and_grad(x, y)
        want = f[f"{name}_grad"]
        np.testing.assert_allclose(grad, want, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("layout", ["authors", "per_channel"])
def test_gradients_finite_for_anticorrelated_and_constant_images(layout, np_ms_ssim_l1):
    x, _ = _pair((2, 24, 28, 3), seed=3)
    cases = {
        "anti": (x, 1.0 - x),
        "equal constants": (np.full_like(x, 0.5), np.full_like(x, 0.5)),
        "different constants": (np.full_like(x, 0.2), np.full_like(x, 0.8)),
        "zeros (empty mask region)": (np.zeros_like(x), np.zeros_like(x)),
        "saturated vs black": (np.ones_like(x), np.zeros_like(x)),
    }
    for name, (a, b) in cases.items():
        loss, grad = _loss_and_grad(a, b, layout=layout)
        assert np.isfinite(loss) and np.all(np.isfinite(grad)), name
        np.testing.assert_allclose(loss, np_ms_ssim_l1(a, b, layout=layout).mean(), rtol=1e-5, atol=1e-6)
    loss, grad = _loss_and_grad(x, 1.0 - x, layout=layout)
    assert np.abs(grad).max() > 1e-4  # anti-correlation still gives a useful gradient


@pytest.mark.parametrize("layout", ["authors", "per_channel"])
def test_gradient_matches_float64_finite_difference(layout, np_ms_ssim_l1):
    """Directional derivative against the NumPy reference, away from the |x - y| kink."""
    rng = np.random.default_rng(6)
    a = rng.uniform(0.1, 0.9, (1, 24, 28, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    d = rng.normal(size=a.shape)
    eps = 1e-5
    a64 = a.astype(np.float64)
    plus, minus = np_ms_ssim_l1(a64 + eps * d, b, layout=layout), np_ms_ssim_l1(a64 - eps * d, b, layout=layout)
    fd = (plus - minus)[0] / (2 * eps)
    _, grad = _loss_and_grad(a, b, layout=layout)
    np.testing.assert_allclose((grad * d).sum(), fd, rtol=1e-4)


def test_identical_images_give_zero_and_graph_mode_matches_eager():
    x, y = _pair((2, 20, 30, 3), seed=4)
    assert abs(ms_ssim_l1(x, x).numpy()) < 1e-4
    spec = tf.TensorSpec((None, None, None, 3), tf.float32)
    graph = tf.function(lambda a, b: ms_ssim_l1(a, b, reduction="none"), input_signature=[spec, spec])
    np.testing.assert_allclose(graph(x, y).numpy(), ms_ssim_l1(x, y, reduction="none").numpy(), rtol=1e-6)
    assert ms_ssim_l1(x[0], y[0], reduction="none").shape == ()


def test_bad_arguments_raise():
    x, y = _pair((1, 16, 16, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        ms_ssim_l1(x, y[:, :8])
    with pytest.raises(ValueError, match="3-channel"):
        ms_ssim_l1(np.zeros((1, 8, 8, 4), np.float32), np.zeros((1, 8, 8, 4), np.float32))
    with pytest.raises(ValueError, match="reduction"):
        ms_ssim_l1(x, y, reduction="sum")
    with pytest.raises(ValueError, match="layout"):
        ms_ssim_l1(x, y, layout="zhao")
