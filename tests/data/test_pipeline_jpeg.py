"""The JPEG-compression augmentation: the RGB only, after the crop, at the drawn quality, eager and in Dataset.map.

Reference: OpenCV's libjpeg encoder at the same quality (4:2:0, as TensorFlow's encoder by default).
"""

import itertools

import cv2
import numpy as np
import pytest
import tensorflow as tf
from data_gen import TEST16, np_mosaic
from test_pipeline import eager_and_mapped

from revisp_tf.data import pipeline
from revisp_tf.data.scan import scan_pairs


def smooth_image(seed=0, size=(48, 64)):
    """A photo-like float RGB (smooth blobs, an edge) whose JPEG error is typical, not noise-dominated."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((*size, 3)).astype(np.float32), (0, 0), 3.0)
    x = (x - x.min()) / (x.max() - x.min())
    x[:, size[1] // 2 :] *= 0.5
    return np.round(x * 255) / 255  # whole 8-bit steps, so only the compression differs


def cv2_jpeg(rgb01, quality):
    """Test-side reference: 8-bit RGB through OpenCV's JPEG encoder and decoder, back to [0, 1]."""
    bgr = np.round(rgb01[..., ::-1] * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


@pytest.mark.parametrize("quality", [50, 85, 95])
def test_jpeg_augmenter_compresses_the_rgb_only_like_libjpeg_eager_and_in_map(quality):
    rgb = smooth_image()
    raw = np.random.default_rng(1).random((24, 32, 4), dtype=np.float32)
    fn = pipeline.make_jpeg_augmenter((quality, quality), seed=3)
    eager, mapped = eager_and_mapped(fn, np.int64(7), {"rgb": rgb, "raw": raw})
    np.testing.assert_array_equal(eager["rgb"], mapped["rgb"])
    np.testing.assert_array_equal(eager["raw"], raw)  # the RAW is untouched
    ref = cv2_jpeg(rgb, quality)
    # libjpeg's own output (OpenCV: same tables, 4:2:0, accurate IDCT), to float rounding of the /255
    np.testing.assert_allclose(eager["rgb"], ref, rtol=0, atol=1e-5)
    assert np.abs(eager["rgb"] - rgb).max() > 0  # it did compress


def test_qualities_are_drawn_in_the_range_from_seed_and_index():
    rgb = smooth_image(2)
    refs = {q: cv2_jpeg(rgb, q) for q in range(60, 91)}
    fn = pipeline.make_jpeg_augmenter((60, 90), seed=0)
    drawn = []
    for index in range(12):
        out = fn(tf.constant(index, tf.int64), {"rgb": tf.constant(rgb)})["rgb"].numpy()
        again = fn(tf.constant(index, tf.int64), {"rgb": tf.constant(rgb)})["rgb"].numpy()
        np.testing.assert_array_equal(out, again)  # stateless: (seed, index) decides
        drawn.append(max(refs, key=lambda q: psnr(out, refs[q])))  # the quality whose libjpeg output it is
    assert min(drawn) >= 60 and max(drawn) <= 90 and len(set(drawn)) >= 5, drawn


def test_training_dataset_compresses_the_cropped_rgb_and_keeps_the_bayer(consistent_aim22):
    ex = scan_pairs(consistent_aim22(size=(24, 32)), sensor=TEST16)
    plain = pipeline.make_dataset(ex, crop=16, batch_size=2, seed=4, augment="dihedral", sensor=TEST16)
    jpeg = pipeline.make_dataset(ex, crop=16, batch_size=2, seed=4, augment="dihedral", sensor=TEST16, jpeg_quality=(75, 75))
    for a, b in itertools.islice(zip(plain.as_numpy_iterator(), jpeg.as_numpy_iterator()), 3):
        np.testing.assert_array_equal(a["raw"], b["raw"])  # same crops and transforms, RAW untouched
        np.testing.assert_array_equal(a["demosaiced"], b["demosaiced"])
        np.testing.assert_array_equal(a["raw"][0], np_mosaic(a["rgb"][0]))
        for x, y in zip(a["rgb"], b["rgb"]):
            np.testing.assert_allclose(y, cv2_jpeg(x, 75), rtol=0, atol=1e-5)  # libjpeg's, after the crop


@pytest.mark.parametrize("bad", [(0, 90), (90, 80), (50, 101), (80,)])
def test_bad_quality_ranges_fail_up_front(consistent_aim22, bad):
    ex = scan_pairs(consistent_aim22(), sensor=TEST16)
    with pytest.raises(ValueError, match="jpeg_quality: expected"):
        pipeline.make_dataset(ex, crop=8, sensor=TEST16, jpeg_quality=bad)
