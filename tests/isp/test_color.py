import numpy as np

from revisp_tf.isp import color


def test_yuv_matrix_is_paper_eq2(synthetic_rgb):
    m = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    want = np.einsum("ij,...j->...i", m, synthetic_rgb.astype(np.float64))
    np.testing.assert_allclose(color.rgb_to_yuv(synthetic_rgb).numpy(), want, atol=1e-6)
    np.testing.assert_allclose(color.luma(synthetic_rgb).numpy()[..., 0], want[..., 0], atol=1e-6)


def test_gamma_and_smoothstep(synthetic_rgb):
    x = synthetic_rgb
    np.testing.assert_allclose(color.gamma(x, 1 / 3.6).numpy(), np.maximum(x, 1e-8) ** (1 / 3.6), rtol=1e-5)
    s = 3 * x**2 - 2 * x**3
    np.testing.assert_allclose(color.smoothstep(x).numpy(), s, atol=1e-6)
    np.testing.assert_allclose(color.inverse_smoothstep(s).numpy(), x, atol=2e-3)


def test_bayer_to_yuv_averages_greens():
    rng = np.random.default_rng(1)
    packed = rng.random((3, 5, 4)).astype(np.float32)
    rgb = np.stack([packed[..., 0], (packed[..., 1] + packed[..., 2]) / 2, packed[..., 3]], -1)
    np.testing.assert_allclose(color.bayer_to_rgb_half(packed).numpy(), rgb, atol=1e-7)
    np.testing.assert_allclose(color.bayer_to_yuv(packed).numpy(), rgb @ color.YUV_MATRIX.T, atol=1e-6)
