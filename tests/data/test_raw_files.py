import logging
import re

import cv2
import numpy as np
import pytest
import rawpy

from revisp_tf.data.raw_files import RawReadError, normalise, read_raw, to_project_stored
from revisp_tf.io.dng import XYZ_TO_SRGB, write_dng

# Row, column of the first red sample of each pattern (test-side reference, not the library's table).
CFA_OFFSET = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}


def ref_stored(raw, black, white):
    """Independent reference of the project units: round(1023 * clip((raw - black) / (white - black)))."""
    norm = np.clip((raw.astype(np.float64) - black) / (white - black), 0.0, 1.0)
    return np.round(1023.0 * norm).astype(np.uint16)


def _headerless(tmp_path, arr, name="frame.raw16"):
    path = tmp_path / name
    arr.tofile(path)
    return path


def test_headerless_uint16_values_levels_and_project_units(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1100, (6, 10)).astype("<u2")
    path = _headerless(tmp_path, arr)
    frame = read_raw(path, shape=(6, 10), dtype="uint16", cfa="grbg", black=64, white=1080)
    np.testing.assert_array_equal(frame.mosaic, arr)
    assert (frame.cfa, frame.black, frame.white, frame.reader) == ("GRBG", (64.0,) * 4, 1080.0, "headerless")
    want = np.clip((arr.astype(np.float64) - 64) / (1080 - 64), 0, 1)
    np.testing.assert_allclose(normalise(frame), want, atol=1e-7)
    np.testing.assert_array_equal(to_project_stored(frame), ref_stored(arr, 64, 1080))
    assert to_project_stored(frame).max() == 1023 and to_project_stored(frame).min() == 0


def test_headerless_big_endian_and_8bit_with_fractional_black(tmp_path):
    arr = (np.arange(24).reshape(4, 6) * 40).astype(">u2")
    frame = read_raw(_headerless(tmp_path, arr), shape=(4, 6), dtype=">u2", cfa="RGGB", black=0, white=1023)
    np.testing.assert_array_equal(frame.mosaic, arr.astype(np.uint16))
    arr8 = np.array([[12, 13, 255, 100], [0, 50, 200, 254]], np.uint8)
    frame8 = read_raw(
        _headerless(tmp_path, arr8, "f.raw"), shape=(2, 4), dtype="uint8", cfa="GRBG", black=12.5, white=255
    )
    assert frame8.mosaic.dtype == np.uint16
    np.testing.assert_array_equal(to_project_stored(frame8), ref_stored(arr8, 12.5, 255))


def test_per_tile_black_levels(tmp_path):
    arr = np.full((4, 4), 600, "<u2")
    frame = read_raw(
        _headerless(tmp_path, arr), shape=(4, 4), dtype="uint16", cfa="RGGB", black=(100, 200, 300, 400), white=1100
    )
    want = np.tile(np.array([[500 / 1000, 400 / 900], [300 / 800, 200 / 700]]), (2, 2))
    np.testing.assert_allclose(normalise(frame), want, rtol=1e-6)


def test_png_mosaic(tmp_path):
    arr = np.random.default_rng(1).integers(0, 1024, (8, 6)).astype(np.uint16)
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), arr)
    frame = read_raw(path, cfa="GRBG", black=25, white=1023)
    np.testing.assert_array_equal(frame.mosaic, arr)
    assert frame.reader == "png"
    np.testing.assert_array_equal(to_project_stored(frame), ref_stored(arr, 25, 1023))


def test_synthetic_dng_pattern_levels_and_colour(tmp_path):
    rng = np.random.default_rng(2)
    packed = rng.random((16, 20, 4)).astype(np.float32)  # LibRaw refuses images under about 22 px a side
    cam_to_srgb = np.array([[1.7, -0.5, -0.2], [-0.3, 1.6, -0.3], [0.05, -0.45, 1.4]])
    path = write_dng(
        tmp_path / "s.dng",
        packed,
        (64, 4095),
        cfa="GRBG",
        wb_gains=(2.0, 1.0, 1.5),
        color_matrix=np.linalg.solve(cam_to_srgb, XYZ_TO_SRGB),
    )
    frame = read_raw(path)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(frame.mosaic, raw.raw_image_visible)
    # The DNG's mosaic is the RGGB mosaic cropped by one column at each end (GRBG phase).
    plane = packed.reshape(16, 20, 2, 2).transpose(0, 2, 1, 3).reshape(32, 40)
    np.testing.assert_array_equal(
        frame.mosaic, np.round(64 + plane[:, 1:-1].astype(np.float64) * 4031).astype(np.uint16)
    )
    assert (frame.cfa, frame.black, frame.white) == ("GRBG", (64.0,) * 4, 4095.0)
    np.testing.assert_allclose(frame.wb, (2.0, 1.0, 1.5), rtol=1e-5)
    np.testing.assert_allclose(frame.color_matrix, cam_to_srgb, atol=2e-3)


def _garbage(tmp_path):
    path = tmp_path / "broken.dng"
    path.write_bytes(b"II*\x00" + b"\x00" * 64)
    return path


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing", "no such file"),
        ("garbage", "LibRaw cannot read it"),
        ("headerless_no_args", "--shape, --dtype, --cfa, --black, --white"),
        ("wrong_size", "a 10x10 uint16 mosaic has 200"),
        ("nan", "non-finite"),
        ("inf", "non-finite"),
        ("above_white", "above white level 1023"),
        ("bad_dtype", "not a sample type"),
        ("bad_cfa", "unknown CFA pattern"),
        ("png_rgb", "expected one 8- or 16-bit plane"),
        ("png_no_levels", "--cfa, --black, --white"),
        ("dng_wrong_cfa", "the file's CFA is GRBG, but RGGB was given"),
    ],
)
def test_bad_input_raises_one_error_naming_the_file(tmp_path, case, expect):
    good = np.full((10, 10), 500, "<u2")
    kw = dict(shape=(10, 10), dtype="uint16", cfa="RGGB", black=0, white=1023)
    if case == "missing":
        path, kw = tmp_path / "nope.dng", {}
    elif case == "garbage":
        path, kw = _garbage(tmp_path), {}
    elif case == "headerless_no_args":
        path, kw = _headerless(tmp_path, good), {}
    elif case == "wrong_size":
        path = _headerless(tmp_path, good[:, :9])
    elif case in ("nan", "inf"):
        bad = good.astype("<f4")
        bad[3, 4] = np.nan if case == "nan" else np.inf
        path, kw = _headerless(tmp_path, bad, "f.raw"), {**kw, "dtype": "float32"}
    elif case == "above_white":
        bad = good.copy()
        bad[0, 0] = 1200  # > 1023 + 5% of the range
        path = _headerless(tmp_path, bad)
    elif case == "bad_dtype":
        path, kw = _headerless(tmp_path, good.astype("<i4"), "i.raw"), {**kw, "dtype": "int32"}
    elif case == "bad_cfa":
        path, kw = _headerless(tmp_path, good), {**kw, "cfa": "RGBW"}
    elif case in ("png_rgb", "png_no_levels"):
        path = tmp_path / "m.png"
        cv2.imwrite(str(path), np.zeros((4, 4, 3) if case == "png_rgb" else (4, 4), np.uint16))
        kw = {"cfa": "RGGB", "black": 0, "white": 1023} if case == "png_rgb" else {}
    else:
        path = write_dng(tmp_path / "g.dng", np.full((16, 16, 4), 0.5, np.float32), (0, 1023), cfa="GRBG")
        kw = {"cfa": "RGGB"}
    with pytest.raises(RawReadError, match=re.escape(str(path))) as err:
        read_raw(path, **kw)
    assert expect in str(err.value)
    assert "\n" not in str(err.value)


def test_slightly_above_white_is_accepted_and_clipped(tmp_path):
    arr = np.array([[1030, 0], [500, 1023]], "<u2")  # 0.7% of the range above white: sensor noise, not wrong levels
    frame = read_raw(_headerless(tmp_path, arr), shape=(2, 2), dtype="uint16", cfa="RGGB", black=0, white=1023)
    np.testing.assert_array_equal(to_project_stored(frame), [[1023, 0], [500, 1023]])


# ---- real sensor files (../shared/realdata) -------------------------------------------------------


def test_canon_550d_dng_matches_rawpy(realdata):
    path = realdata / "raw" / "canon_550d" / "colorchart.dng"
    frame = read_raw(path)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(frame.mosaic, raw.raw_image_visible)
    assert (frame.cfa, frame.black, frame.white) == ("RGGB", (2056.0,) * 4, 15000.0)
    np.testing.assert_array_equal(to_project_stored(frame), ref_stored(frame.mosaic, 2056, 15000))
    # Camera multipliers 1 : 0.4037 : 0.6840 (R : G : B) -> gains relative to green.
    np.testing.assert_allclose(frame.wb, (1 / 0.40371418, 1.0, 0.68399453 / 0.40371418), rtol=1e-6)


def test_placeholder_levels_are_warned_about(tmp_path, caplog):
    arr = np.array([[8, 315], [40, 100]], "<u2")  # a 10-bit frame described as 16-bit
    with caplog.at_level(logging.WARNING):
        read_raw(_headerless(tmp_path, arr), shape=(2, 2), dtype="uint16", cfa="RGGB", black=0, white=65535)
    assert "placeholder levels?" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        read_raw(_headerless(tmp_path, arr), shape=(2, 2), dtype="uint16", cfa="RGGB", black=0, white=1023)
    assert "placeholder" not in caplog.text


def test_huawei_p9_dng_placeholder_levels_overridden(realdata, caplog):
    path = realdata / "raw" / "huawei_p9" / "RAW_00242.dng"
    with caplog.at_level(logging.WARNING):
        assert read_raw(path).white == 65535  # the placeholder the README warns about
    assert "placeholder levels?" in caplog.text
    frame = read_raw(path, black=0, white=1023)
    assert (frame.cfa, frame.black, frame.white) == ("RGGB", (0.0,) * 4, 1023.0)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(to_project_stored(frame), ref_stored(raw.raw_image_visible, 0, 1023))
    with pytest.raises(RawReadError, match="above white level 255"):
        read_raw(path, black=0, white=255)  # P9 values reach 315


def test_real_headerless_and_png_mosaics(realdata):
    raw16 = realdata / "raw" / "huawei_p9" / "RAW_00019.raw16"
    frame = read_raw(raw16, shape=(1080, 1920), dtype="<u2", cfa="RGGB", black=0, white=1023)
    np.testing.assert_array_equal(frame.mosaic, np.fromfile(raw16, "<u2").reshape(1080, 1920))
    with pytest.raises(RawReadError, match=re.escape(str(raw16)) + ".*4147200 bytes.*1080x1921"):
        read_raw(raw16, shape=(1080, 1921), dtype="<u2", cfa="RGGB", black=0, white=1023)
    png = realdata / "raw" / "nokia_n900" / "bayer_small.png"
    frame = read_raw(png, cfa="GRBG", black=25, white=1023)
    assert frame.mosaic.shape == (344, 256) and frame.mosaic.max() == 1053  # 3% over white: accepted, clipped
    np.testing.assert_array_equal(
        to_project_stored(frame), ref_stored(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), 25, 1023)
    )
