import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from revisp_tf.scoring import metrics
from tests.scorer_reference import skimage_ssim as skimage_reference
from tests.scorer_reference import ssim as scorer_ssim


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:60, 0:52] / 60.0
    gt = np.stack([xx, yy, xx * yy, 0.5 + 0.4 * np.sin(6 * xx)], -1)
    res = np.clip(gt + 0.05 * rng.standard_normal(gt.shape), 0, 1)
    return gt, res


def test_window_is_scipys_13_taps():
    w = metrics.gaussian_window()
    assert len(w) == 13 and w.sum() == pytest.approx(1.0, abs=1e-15)
    impulse = np.zeros(41)
    impulse[20] = 1.0
    assert np.allclose(gaussian_filter(impulse, 1.5)[14:27], w, atol=1e-15)
    assert len(metrics.gaussian_window(metrics.SKIMAGE_TRUNCATE)) == 11


def test_psnr_is_the_scorers(pair):
    gt, res = pair
    assert metrics.challenge_psnr(res, gt) == pytest.approx(10 * np.log10(1 / np.mean((gt - res) ** 2)), abs=1e-12)
    assert metrics.challenge_psnr(gt, gt) == 999.0
    w = np.zeros(gt.shape)
    w[:10] = 1
    assert metrics.challenge_psnr(res, gt, w) == pytest.approx(10 * np.log10(1 / np.mean((gt[:10] - res[:10]) ** 2)))


def test_empty_weights_give_nan(pair):
    gt, res = pair
    assert np.isnan(metrics.challenge_psnr(res, gt, np.zeros(gt.shape)))


def test_ssim_is_the_scorers(pair):
    gt, res = pair
    assert metrics.challenge_ssim(res, gt) == pytest.approx(scorer_ssim(gt, res), abs=1e-12)
    assert metrics.challenge_ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)


def test_skimage_variant_is_skimages(pair):
    gt, res = pair
    assert metrics.skimage_ssim(res, gt) == pytest.approx(skimage_reference(gt, res), abs=1e-12)
    # Not the same number: the scorer's constants are 4x larger and its window wider.
    assert metrics.challenge_ssim(res, gt) - metrics.skimage_ssim(res, gt) > 0.02


def _real_raw_pair(realdata):
    """A real pair: the Canon 550D's own packed mosaic against the mosaic of LibRaw's render of it."""
    import rawpy

    from revisp_tf.isp import mosaic

    with rawpy.imread(str(realdata / "raw" / "canon_550d" / "colorchart.dng")) as raw:
        frame = raw.raw_image_visible.astype(np.float64)
        rgb = raw.postprocess(no_auto_bright=True, output_bps=16, user_flip=0).astype(np.float32) / 65535.0
    h, w = (min(a, b) // 2 * 2 for a, b in zip(frame.shape, rgb.shape[:2]))
    ref = np.clip((frame[:h, :w] - 2056) / (15000 - 2056), 0, 1)
    ref = np.stack([ref[0::2, 0::2], ref[0::2, 1::2], ref[1::2, 0::2], ref[1::2, 1::2]], -1)
    res = mosaic(rgb[:h, :w]).numpy().astype(np.float64)
    return ref[:200, :240], res[:200, :240]


def test_on_real_pairs(s7_patches, realdata):
    from revisp_tf.isp import mosaic

    gt = mosaic(s7_patches["48_29.jpg"]).numpy().astype(np.float64)
    pairs = [(gt, np.clip(gt * 0.97 + 0.01, 0, 1)), _real_raw_pair(realdata)]
    for ref, res in pairs:
        expected = scorer_ssim(ref, res)
        assert metrics.challenge_ssim(res, ref) == pytest.approx(expected, abs=1e-9)
        assert metrics.skimage_ssim(res, ref) == pytest.approx(skimage_reference(ref, res), abs=1e-9)


def test_too_small_for_ssim():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.challenge_ssim(np.zeros((8, 20, 4)), np.zeros((8, 20, 4)))


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        metrics.challenge_psnr(np.zeros((4, 4, 4)), np.zeros((4, 6, 4)))
