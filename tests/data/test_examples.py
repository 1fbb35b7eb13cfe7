"""data.examples: the one pair reader, for RAW stored as a PNG mosaic in a non-RGGB pattern (which `eval` and the
global stage's fit used to read only as packed `.npy`, and without the pattern's crop)."""

import cv2
import numpy as np

from revisp_tf.data.examples import read_example
from revisp_tf.data.scan import Example
from revisp_tf.isp.sensor import SensorSpec
from revisp_tf.scoring.baselines import fit_baseline

GRBG10 = SensorSpec("grbg10", "GRBG", black_level=0, white_level=1023, normaliser=1024)


def _pair(tmp_path, seed=0, h=24, w=32):
    rng = np.random.default_rng(seed)
    mosaic = rng.integers(0, 1024, (h, w)).astype(np.uint16)
    rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / f"{seed}_0.png"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / f"{seed}_0.raw.png"), mosaic)
    return Example(tmp_path / f"{seed}_0.png", str(seed), (h, w), tmp_path / f"{seed}_0.raw.png"), mosaic, rgb


def test_png_mosaic_in_grbg_reads_as_packed_rggb_with_the_rgb_cropped_alike(tmp_path):
    example, mosaic, rgb = _pair(tmp_path)
    got_rgb, got_raw = read_example(example, GRBG10)
    # GRBG -> RGGB: drop the first and last column, so (0, 0) of what is left is a red site.
    m = mosaic[:, 1:-1].astype(np.float32) / 1024
    want = np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]], -1)
    np.testing.assert_array_equal(got_raw, want)
    np.testing.assert_array_equal(got_rgb, rgb[:, 1:-1].astype(np.float32) / 255)


def test_the_fitted_baseline_fits_on_png_mosaics(tmp_path):
    examples = [_pair(tmp_path, seed)[0] for seed in range(2)]
    fitted = fit_baseline(examples, GRBG10)
    rgb, _ = read_example(examples[0], GRBG10)
    assert fitted.predict(rgb).shape == (24 // 2, (32 - 2) // 2, 4)
