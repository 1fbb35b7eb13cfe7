import numpy as np
import pytest
from skimage.metrics import structural_similarity

from revisp_tf import metrics


def scorer_ssim(ref, res):
    """What mv-lab/AISP scoring/evaluation.py computes (FACTS.md), with skimage as the independent reference."""
    return np.mean([
        structural_similarity(ref[..., i], res[..., i], gaussian_weights=True, use_sample_covariance=False, data_range=1)
        for i in range(4)
    ])


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:60, 0:52] / 60.0
    gt = np.stack([xx, yy, xx * yy, 0.5 + 0.4 * np.sin(6 * xx)], -1)
    res = np.clip(gt + 0.05 * rng.standard_normal(gt.shape), 0, 1)
    return gt, res


def test_psnr_is_the_scorers(pair):
    gt, res = pair
    assert metrics.challenge_psnr(res, gt) == pytest.approx(10 * np.log10(1 / np.mean((gt - res) ** 2)), abs=1e-12)
    assert metrics.challenge_psnr(gt, gt) == 999.0
    w = np.zeros(gt.shape)
    w[:10] = 1
    assert metrics.challenge_psnr(res, gt, w) == pytest.approx(10 * np.log10(1 / np.mean((gt[:10] - res[:10]) ** 2)))


def test_ssim_matches_skimage(pair):
    gt, res = pair
    assert metrics.challenge_ssim(res, gt) == pytest.approx(scorer_ssim(gt, res), abs=1e-12)
    assert metrics.challenge_ssim(gt, gt) == pytest.approx(1.0)


def test_tf_versions_agree_with_numpy(pair):
    gt, res = pair
    batch_gt, batch_res = np.stack([gt, res]), np.stack([res, gt * 0.9])
    for i in range(2):
        assert float(metrics.ssim(batch_res, batch_gt)[i]) == pytest.approx(metrics.challenge_ssim(batch_res[i], batch_gt[i]), abs=1e-4)
        assert float(metrics.psnr(batch_res, batch_gt)[i]) == pytest.approx(metrics.challenge_psnr(batch_res[i], batch_gt[i]), abs=1e-4)


def test_on_real_patch_units(s7_patches):
    from revisp_tf.isp import mosaic

    gt = mosaic(s7_patches["48_29.jpg"]).numpy().astype(np.float64)
    res = np.clip(gt * 0.97 + 0.01, 0, 1)
    assert metrics.challenge_ssim(res, gt) == pytest.approx(scorer_ssim(gt, res), abs=1e-10)
    assert float(metrics.ssim(res[None], gt[None])[0]) == pytest.approx(scorer_ssim(gt, res), abs=1e-4)


def test_too_small_for_ssim():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.challenge_ssim(np.zeros((8, 20, 4)), np.zeros((8, 20, 4)))


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        metrics.challenge_psnr(np.zeros((4, 4, 4)), np.zeros((4, 6, 4)))
