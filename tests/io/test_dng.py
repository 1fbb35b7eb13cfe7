import shutil
import subprocess

import cv2
import numpy as np
import pytest
import rawpy
import tifffile

from revisp_tf.io.dng import write_dng, write_dng_bands
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.sensor import HUAWEI_P20, SAMSUNG_S7

PATTERNS = ("RGGB", "GRBG", "GBRG", "BGGR")
# Independent reference: where each pattern's top-left tile starts inside an RGGB mosaic.
SHIFTS = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}
# LibRaw's sRGB -> XYZ (D65) constant, used by its DNG colour pipeline.
SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])


def _reference_mosaic(packed: np.ndarray, pattern: str) -> np.ndarray:
    """NumPy unpack of packed RGGB (channels R, G, G, B by tile position), then crop to `pattern`."""
    h, w, _ = packed.shape
    full = np.zeros((2 * h, 2 * w), packed.dtype)
    for c, (r, col) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        full[r::2, col::2] = packed[..., c]
    dy, dx = SHIFTS[pattern]
    return full[dy : 2 * h - dy, dx : 2 * w - dx]


def _pattern_of(raw) -> str:
    return "".join(chr(raw.color_desc[raw.raw_pattern[r, c]]) for r, c in ((0, 0), (0, 1), (1, 0), (1, 1)))


def _packed(seed=0, shape=(16, 20, 4)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_rawpy_reads_back_mosaic_pattern_and_levels(tmp_path, pattern):
    packed = _packed()
    path = write_dng(tmp_path / "x.dng", packed, SAMSUNG_S7, cfa=pattern)
    expected = np.round(_reference_mosaic(packed, pattern).astype(np.float64) * 1024).astype(np.uint16)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, expected)
        assert _pattern_of(raw) == pattern
        assert list(raw.black_level_per_channel) == [0, 0, 0, 0]
        assert raw.white_level == 1023
    assert list(tmp_path.iterdir()) == [path]


def test_sensor_with_black_offset(tmp_path):
    packed = _packed(1)
    path = write_dng(tmp_path / "p20.dng", packed, HUAWEI_P20, cfa="GBRG")
    with rawpy.imread(str(path)) as raw:
        expected = np.round(_reference_mosaic(packed, "GBRG") * np.float64(1020))
        np.testing.assert_array_equal(raw.raw_image_visible, expected)
        assert list(raw.black_level_per_channel) == [60] * 4 and raw.white_level == 1020


def test_levels_pair_maps_zero_to_black_and_one_to_white(tmp_path):
    packed = _packed(2)
    packed[0, 0] = [0.0, 1.0, 0.5, 0.25]
    path = write_dng(tmp_path / "lv.dng", packed, (2056, 15000))
    with rawpy.imread(str(path)) as raw:
        stored = raw.raw_image_visible.copy()  # the view dies with the LibRaw handle
        assert list(raw.black_level_per_channel) == [2056] * 4 and raw.white_level == 15000
    np.testing.assert_array_equal(stored, np.round(2056 + _reference_mosaic(packed, "RGGB") * np.float64(15000 - 2056)))
    assert stored[:2, :2].tolist() == [[2056, 15000], [8528, 5292]]


def test_colour_matrix_and_white_balance(tmp_path):
    xyz_to_cam = np.array([[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.154, 0.5829]])
    path = write_dng(tmp_path / "cm.dng", _packed(3), SAMSUNG_S7, color_matrix=xyz_to_cam, wb_gains=(2.0, 1.0, 1.5))
    # LibRaw: cam_rgb = ColorMatrix @ sRGB->XYZ with rows normalised to 1, rgb_cam = its inverse.
    cam_rgb = xyz_to_cam @ SRGB_TO_XYZ
    cam_rgb /= cam_rgb.sum(axis=1, keepdims=True)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_allclose(raw.color_matrix[:, :3], np.linalg.inv(cam_rgb), atol=1e-3)
        wb = np.asarray(raw.camera_whitebalance[:3]) / raw.camera_whitebalance[1]
    np.testing.assert_allclose(wb, [2.0, 1.0, 1.5], rtol=1e-5)


def test_default_matrix_makes_camera_space_linear_srgb(tmp_path):
    path = write_dng(tmp_path / "id.dng", _packed(4), SAMSUNG_S7)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_allclose(raw.color_matrix[:, :3], np.eye(3), atol=1e-3)
        np.testing.assert_allclose(raw.camera_whitebalance[:3], [1.0, 1.0, 1.0], rtol=1e-5)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("colour", [0, 1, 2])
def test_postprocess_puts_colours_in_place(tmp_path, pattern, colour):
    # A single-colour scene in packed RGGB (R, G, G, B); every pattern must render that colour.
    rgb = np.zeros(3, np.float32)
    rgb[colour] = 0.5
    packed = np.broadcast_to(rgb[[0, 1, 1, 2]], (16, 16, 4))
    path = write_dng(tmp_path / "c.dng", packed, SAMSUNG_S7, cfa=pattern)
    with rawpy.imread(str(path)) as raw:
        out = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16).astype(np.float64)
    means = out.reshape(-1, 3).mean(axis=0)
    assert means[colour] > 30000
    assert np.delete(means, colour).max() < 0.01 * means[colour]


def test_bad_input_raises_and_writes_nothing(tmp_path):
    good = _packed()
    cases = [
        (dict(packed_rggb_units=good[None]), r"one image \(h, w, 4\)"),
        (dict(packed_rggb_units=good[..., :3]), "expected 4 channels"),
        (dict(packed_rggb_units=good + 1), r"values in \[0, 1\]"),
        (dict(packed_rggb_units=(good * 1000).astype(np.uint16)), "float"),
        (dict(cfa="RRGB"), "unknown CFA"),
        (dict(wb_gains=(1.0, 0.0, 1.0)), "wb_gains"),
        (dict(color_matrix=np.eye(4)), "color_matrix"),
        (dict(sensor=(100, 50)), "black < white"),
        (dict(sensor=(0.5, 1023)), "whole number"),
        (dict(sensor="s7"), "SensorSpec or a"),
    ]
    for overrides, match in cases:
        kwargs = dict(packed_rggb_units=good, sensor=SAMSUNG_S7) | overrides
        with pytest.raises(ValueError, match=match):
            write_dng(tmp_path / "bad.dng", kwargs.pop("packed_rggb_units"), kwargs.pop("sensor"), **kwargs)
    assert list(tmp_path.iterdir()) == []


def _bars_packed(h=96, w=144) -> np.ndarray:
    """Packed RGGB of three vertical bars (red, green, blue) with a vertical ramp."""
    rgb = np.zeros((h, w, 3), np.float32)
    for k in range(3):
        rgb[:, k * w // 3 : (k + 1) * w // 3, k] = 0.6
    rgb *= np.linspace(0.3, 1.0, h, dtype=np.float32)[:, None, None]
    return mosaic(rgb).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["RGGB", "GRBG"])
def test_darktable_renders_written_dng(tmp_path, pattern):
    if shutil.which("darktable-cli") is None:
        pytest.skip("darktable-cli not on PATH (Debian: apt-get install -y darktable)")
    dng = write_dng(tmp_path / "bars.dng", _bars_packed(), SAMSUNG_S7, cfa=pattern)
    out = tmp_path / "bars.jpg"
    cmd = ["darktable-cli", str(dng), str(out), "--core", "--configdir", str(tmp_path / "cfg"),
           "--cachedir", str(tmp_path / "cache"), "--library", ":memory:"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and out.is_file(), proc.stdout + proc.stderr
    bgr = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert bgr is not None
    dy, dx = SHIFTS[pattern]
    assert bgr.shape == (96 - 2 * dy, 144 - 2 * dx, 3)
    rgb = bgr[..., ::-1].astype(np.float64)
    assert rgb.std() > 20
    # Each bar renders in its own colour (inner columns, away from demosaic fringes at the edges).
    w = rgb.shape[1]
    for k in range(3):
        bar = rgb[:, k * w // 3 + 4 : (k + 1) * w // 3 - 4].reshape(-1, 3).mean(axis=0)
        assert bar[k] > 100 and np.delete(bar, k).max() < 0.2 * bar[k], (k, bar)


def _bands(frame: np.ndarray, sizes):
    """(first row, rows) bands of `frame`, of the given row counts (the last takes the rest)."""
    y = 0
    for n in sizes:
        yield y, frame[y : y + n]
        y += n
    if y < len(frame):
        yield y, frame[y:]


def _tags(path) -> tuple:
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        return tags[50721].value, tags[50728].value, tags[50714].value, tags[50717].value


def test_dng_written_from_bands_equals_the_whole_frame_dng(tmp_path):
    rng = np.random.default_rng(7)
    packed = (0.1 + 0.6 * rng.random((48, 60, 4))).astype(np.float32)
    rgb = (rng.random((96, 120, 3)) * 230).astype(np.uint8)
    whole = write_dng(tmp_path / "whole.dng", packed, SAMSUNG_S7, rgb=rgb)
    streamed = write_dng_bands(tmp_path / "bands.dng", packed.shape, _bands(packed, [5, 17, 1, 20]), SAMSUNG_S7, rgb=rgb)
    with rawpy.imread(str(streamed)) as raw:
        stored = raw.raw_image_visible.copy()
        assert _pattern_of(raw) == "RGGB" and raw.white_level == 1023
    np.testing.assert_array_equal(stored, np.round(_reference_mosaic(packed, "RGGB") * np.float64(1024)))
    assert _tags(streamed) == _tags(whole)
    assert _tags(whole)[0] != _tags(write_dng(tmp_path / "plain.dng", packed, SAMSUNG_S7))[0]  # the fit did something
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bands.dng", "plain.dng", "whole.dng"]


def test_colour_fit_of_bands_reads_every_kth_tile_as_color_fit_thins(tmp_path, monkeypatch):
    from revisp_tf.io import dng
    from revisp_tf.isp import color_fit
    from revisp_tf.isp.color_fit import fit_camera_colour

    with monkeypatch.context() as m:
        m.setattr(color_fit, "_MAX_TILES", 100)  # 48 x 60 tiles -> every 6th row and column
        stride = color_fit.thinning_stride(48, 60)
    assert stride == 6
    monkeypatch.setattr(dng, "thinning_stride", lambda h, w: stride)  # the bands thin; the fit itself reads all it gets
    rng = np.random.default_rng(8)
    packed = (0.1 + 0.6 * rng.random((48, 60, 4))).astype(np.float32)
    rgb = rng.random((96, 120, 3)) * 0.9
    path = write_dng_bands(tmp_path / "k.dng", packed.shape, _bands(packed, [7, 3, 11]), SAMSUNG_S7, rgb=rgb)
    # Independent reference: the stored values of every 6th tile, and the matching 2x2 RGB blocks.
    camera = np.round(packed[::6, ::6].astype(np.float64) * 1024) / 1023
    blocks = rgb.reshape(48, 2, 60, 2, 3)[::6, :, ::6].reshape(16, 20, 3)
    colour = fit_camera_colour(np.clip(camera, 0, 1), blocks)
    tags = dng.dng_colour(colour.camera_to_srgb)
    want = dng._color_matrix(tags.color_matrix), dng._as_shot_neutral(tags.wb_gains)
    assert _tags(path)[:2] == tuple(map(tuple, want))


def test_dng_bands_out_of_order_or_short_leave_nothing(tmp_path):
    packed = _packed()
    with pytest.raises(RuntimeError, match=r"bad\.dng: rows 4\.\. arrived after 0 rows"):
        write_dng_bands(tmp_path / "bad.dng", packed.shape, [(4, packed[4:])], SAMSUNG_S7)
    with pytest.raises(RuntimeError, match=r"bad\.dng: 10 of 16 rows"):
        write_dng_bands(tmp_path / "bad.dng", packed.shape, [(0, packed[:10])], SAMSUNG_S7)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        write_dng_bands(tmp_path / "bad.dng", packed.shape, [(0, packed + 1)], SAMSUNG_S7)
    assert list(tmp_path.iterdir()) == []
