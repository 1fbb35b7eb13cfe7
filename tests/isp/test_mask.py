import numpy as np
import pytest

from revisp_tf.isp import overexposure_mask


def np_luma_mask(rgb, threshold=0.978):
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return (y >= threshold).astype(np.float32)[..., None]


def test_luma_rule_matches_numpy(synthetic_rgb):
    got = overexposure_mask(synthetic_rgb).numpy()
    np.testing.assert_array_equal(got, np_luma_mask(synthetic_rgb))
    assert 0 < got.mean() < 1  # the fixture has both kinds of pixel


def test_threshold_is_inclusive_and_max_rule():
    rgb = np.array([[[0.978, 0.978, 0.978], [0.977, 0.977, 0.977]], [[0.99, 0.2, 0.2], [0.98, 0.98, 0.98]]], np.float32)
    np.testing.assert_array_equal(overexposure_mask(rgb).numpy()[..., 0], np_luma_mask(rgb)[..., 0])
    assert overexposure_mask(rgb).numpy()[0, 0, 0] == 1 and overexposure_mask(rgb).numpy()[0, 1, 0] == 0
    # max(R,G,B) >= 0.99: only the red pixel; its luma (0.43) is far below 0.978.
    np.testing.assert_array_equal(overexposure_mask(rgb, rule="max").numpy()[..., 0], [[0, 0], [1, 0]])
    np.testing.assert_array_equal(overexposure_mask(rgb, 0.5).numpy()[..., 0], [[1, 1], [0, 1]])


def test_real_s7_patches_match_numpy_and_published_shares(realdata, s7_patches):
    for name, rgb in s7_patches.items():
        np.testing.assert_array_equal(overexposure_mask(rgb).numpy(), np_luma_mask(rgb), err_msg=name)
    # realdata/README.md: scene 10 has no overexposed pixels, scene 78 about 7.5% on average.
    import cv2

    def share(scene):
        paths = sorted((realdata / "aim22_s7_rgb").glob(f"{scene}_*.jpg"))
        return np.mean([np_luma_mask(cv2.imread(str(p))[..., ::-1] / 255.0).mean() for p in paths])

    assert share(10) < 1e-5  # README rounds it to 0%: a single pixel in 48 patches
    assert abs(share(78) - 0.075) < 0.005
    assert overexposure_mask(s7_patches["78_13.jpg"]).numpy().mean() > 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((4, 4, 3), 255, np.uint8), "dtype uint8"),
        (np.full((4, 4, 3), 1.5, np.float32), r"values in \[0, 1\]"),
        (np.full((4, 4, 3), np.nan, np.float32), "non-finite"),
        (np.zeros((4, 4, 1), np.float32), "expected 3 channels"),
    ],
)
def test_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        overexposure_mask(bad)


def test_unknown_rule():
    with pytest.raises(ValueError, match="unknown mask rule"):
        overexposure_mask(np.zeros((2, 2, 3), np.float32), rule="mean")
