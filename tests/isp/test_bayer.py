import numpy as np
import pytest

from revisp_tf.isp import bayer

COLOR = {"R": 0, "G": 1, "B": 2}


def np_mosaic_plane(rgb, pattern):
    """Independent reference: the full-resolution single-plane mosaic, pixel by pixel."""
    h, w = rgb.shape[-3:-1]
    plane = np.zeros(rgb.shape[:-1], rgb.dtype)
    for y in range(h):
        for x in range(w):
            plane[..., y, x] = rgb[..., y, x, COLOR[pattern[2 * (y % 2) + x % 2]]]
    return plane


def np_pack(plane):
    """Packed by tile position: reshape into 2x2 tiles, positions (0,0),(0,1),(1,0),(1,1)."""
    *lead, h, w = plane.shape
    t = plane.reshape(*lead, h // 2, 2, w // 2, 2)
    t = np.moveaxis(t, -3, -2)  # (..., h/2, w/2, 2, 2)
    return t.reshape(*lead, h // 2, w // 2, 4)


@pytest.mark.parametrize("pattern", bayer.CFA_PATTERNS)
def test_mosaic_matches_numpy_for_every_pattern(pattern, synthetic_rgb):
    want = np_pack(np_mosaic_plane(synthetic_rgb, pattern))
    np.testing.assert_array_equal(bayer.mosaic(synthetic_rgb, pattern).numpy(), want)
    np.testing.assert_array_equal(bayer.mosaic(synthetic_rgb[1], pattern).numpy(), want[1])


def test_canonical_channel_order_is_r_g_g_b():
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[0, 0] = [0.1, 0.9, 0.9]  # R sampled here
    rgb[0, 1] = [0.9, 0.2, 0.9]  # G (row 0)
    rgb[1, 0] = [0.9, 0.3, 0.9]  # G (row 1)
    rgb[1, 1] = [0.9, 0.9, 0.4]  # B
    np.testing.assert_allclose(bayer.mosaic(rgb).numpy()[0, 0], [0.1, 0.2, 0.3, 0.4])


def test_pack_unpack_round_trip_and_reference(synthetic_rgb):
    plane = synthetic_rgb[..., :1]
    packed = bayer.pack(plane).numpy()
    np.testing.assert_array_equal(packed, np_pack(plane[..., 0]))
    np.testing.assert_array_equal(bayer.unpack(packed).numpy(), plane)
    raw = np.arange(6 * 8, dtype=np.uint16).reshape(6, 8, 1)
    np.testing.assert_array_equal(bayer.pack(raw).numpy(), np_pack(raw[..., 0].astype(np.float32)))


@pytest.mark.parametrize("src", bayer.CFA_PATTERNS)
@pytest.mark.parametrize("dst", bayer.CFA_PATTERNS)
def test_pattern_conversion_is_a_shift(src, dst, synthetic_rgb):
    converted = bayer.convert_pattern(bayer.mosaic(synthetic_rgb, src), src, dst).numpy()
    dy, dx = bayer.cfa_shift(src, dst)
    h, w = synthetic_rgb.shape[1:3]
    cropped = synthetic_rgb[:, dy : h - dy, dx : w - dx]
    np.testing.assert_array_equal(converted, np_pack(np_mosaic_plane(cropped, dst)))
    np.testing.assert_array_equal(bayer.crop_to_pattern(synthetic_rgb, src, dst).numpy(), cropped)


def test_channel_permutation_is_not_a_pattern_conversion(synthetic_rgb):
    grbg = bayer.mosaic(synthetic_rgb, "GRBG").numpy()
    right = bayer.convert_pattern(grbg, "GRBG", "RGGB").numpy()
    permuted = grbg[..., [1, 0, 3, 2]]  # the classic mistake: same colours, samples moved by a pixel
    assert right.shape[2] == grbg.shape[2] - 1
    assert np.abs(permuted[:, :, :-1] - right).max() > 0.01


def test_mosaic_on_real_s7_patches(s7_patches):
    for name, rgb in s7_patches.items():
        want = np_pack(np_mosaic_plane(rgb[:64, :96], "RGGB"))
        np.testing.assert_array_equal(bayer.mosaic(rgb[:64, :96]).numpy(), want, err_msg=name)
        assert bayer.mosaic(rgb).shape == (252, 252, 4)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((5, 6, 3), np.float32), "even height and width"),
        (np.zeros((6, 6, 4), np.float32), "expected 3 channels"),
        (np.zeros((6, 6, 3), np.uint8), "dtype uint8"),
        (np.zeros((6, 3), np.float32), "expected shape"),
    ],
)
def test_bad_mosaic_input(bad, message):
    with pytest.raises(ValueError, match=message):
        bayer.mosaic(bad)


def test_unknown_pattern():
    with pytest.raises(ValueError, match="unknown CFA pattern 'RGBG'"):
        bayer.mosaic(np.zeros((2, 2, 3), np.float32), "RGBG")
