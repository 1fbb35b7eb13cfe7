"""The gains each ISP records in meta.json ("capture"), checked against what the render really did.

- LibRaw: its own linear render (camera RGB out, gamma 1, 16 bits) of the same frame, divided by
  the mosaic's channel means, is wb * exposure_gain (a white balance with a multiplier under 1
  brightens: LibRaw scales the smallest to 1).
- RawTherapee: a grey scene whose camera RGB is 1 / wb renders grey (the camera white balance is
  the recorded one), and the linearised render under Compensation=1 is 2x the neutral one.
- darktable: read from its own XMP history; the white balance is the frame's, the exposure its
  scene-referred default, +0.7 EV.
- camera JPEGs: the RAW's as-shot white balance and the JPEG's EXIF exposure.
"""

import io
import json
import shutil

import numpy as np
import pytest
import rawpy
from PIL import Image
from test_pairs import LEVELS, RGGB_COLORS, WB, synthetic_camera_rgb

from revisp_tf.data import pairs
from revisp_tf.data.isps import get_isp
from revisp_tf.data.isps import camera, darktable
from revisp_tf.data.isps import rawtherapee as rt
from revisp_tf.data.isps.libraw import libraw_capture
from revisp_tf.data.raw_files import read_raw
from revisp_tf.io.dng import write_dng
from revisp_tf.io.metadata import CaptureMetadata, pairs_metadata, patch_captures


@pytest.fixture(scope="module")
def synthetic_dng(tmp_path_factory):
    cam = synthetic_camera_rgb(262, 390) / np.asarray(WB)
    plane = np.take_along_axis(cam, np.tile(RGGB_COLORS, (131, 195))[..., None], axis=-1)[..., 0]
    packed = np.stack([plane[0::2, 0::2], plane[0::2, 1::2], plane[1::2, 0::2], plane[1::2, 1::2]], -1)
    path = tmp_path_factory.mktemp("dng") / "synthetic_scene.dng"
    return write_dng(path, packed.astype(np.float32), LEVELS, wb_gains=WB)


@pytest.fixture(scope="module")
def grey_dng(tmp_path_factory):
    """Six grey stripes (linear 0.05 .. 0.4 after white balance) whose camera RGB is grey / WB."""
    h, w = 130, 196  # packed: 260 x 392 px, RawTherapee wants 256 a side
    grey = np.zeros((h, w))
    for i in range(6):
        grey[:, i * w // 6 : (i + 1) * w // 6] = 0.05 * 2 ** (i * 0.6)
    cam = grey[..., None] / np.asarray(WB)
    packed = np.stack([cam[..., 0], cam[..., 1], cam[..., 1], cam[..., 2]], -1).astype(np.float32)
    return write_dng(tmp_path_factory.mktemp("grey") / "grey.dng", packed, LEVELS, wb_gains=WB)


# ---- the schema ----------------------------------------------------------------------------------


def test_schema_round_trip_normalises_green_and_refuses_bad_fields():
    m = CaptureMetadata(wb=(4.0, 2.0, 3.0), exposure_gain=1.5, source="x", iso=200)
    assert m.wb == (2.0, 1.0, 1.5) and m.as_shot_neutral == (0.5, 1.0, 1 / 1.5)
    d = m.to_json()
    assert d == {"wb": [2.0, 1.0, 1.5], "exposure_gain": 1.5, "exposure_time": None, "f_number": None, "iso": 200.0, "source": "x"}
    assert CaptureMetadata.from_json(json.loads(json.dumps(d))) == m
    with pytest.raises(ValueError, match=r"^f.json: wb must be 3 positive"):
        CaptureMetadata.from_json({**d, "wb": [1, 0, 2]}, "f.json")
    with pytest.raises(ValueError, match=r"^f.json: exposure_gain must be a positive number, got -1"):
        CaptureMetadata.from_json({**d, "exposure_gain": -1}, "f.json")
    with pytest.raises(ValueError, match=r"^f.json: unknown field\(s\) gain; expected the fields wb, exposure_gain"):
        CaptureMetadata.from_json({**d, "gain": 2}, "f.json")
    with pytest.raises(ValueError, match="no 'wb'"):
        CaptureMetadata.from_json({"source": "x"}, "f.json")


# ---- LibRaw ---------------------------------------------------------------------------------------


def ref_libraw_channel_gains(path, wb):
    """LibRaw's linear render of the file (camera RGB, gamma 1, 16 bits) over the mosaic's channel means."""
    with rawpy.imread(str(path)) as raw:
        out = raw.postprocess(
            output_color=rawpy.ColorSpace.raw, gamma=(1, 1), output_bps=16, no_auto_bright=True, user_flip=0,
            user_wb=[wb[0], wb[1], wb[2], wb[1]], highlight_mode=rawpy.HighlightMode.Clip,
            demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR, adjust_maximum_thr=0.0,
        )
        colors = raw.raw_colors_visible
        mosaic = (raw.raw_image_visible.astype(np.float64) - LEVELS[0]) / (LEVELS[1] - LEVELS[0])
    keep = (out.max(axis=-1) < 65000)  # away from the clipped block
    rendered = out[keep].astype(np.float64).mean(axis=0) / 65535.0
    camera_means = np.array([mosaic[keep & (colors == c)].mean() for c in (0, 1, 2)])
    return rendered / camera_means


@pytest.mark.parametrize("wb", [WB, (0.8, 1.0, 1.5), (0.6, 1.0, 0.9)])
def test_libraw_capture_is_the_gain_its_linear_render_shows(synthetic_dng, wb):
    frame = read_raw(synthetic_dng, wb=wb)
    capture = libraw_capture(frame)
    np.testing.assert_allclose(capture.wb, wb, rtol=1e-6)
    applied = np.asarray(capture.wb) * capture.exposure_gain
    np.testing.assert_allclose(applied, ref_libraw_channel_gains(synthetic_dng, wb), rtol=0.01)
    assert capture.exposure_gain == pytest.approx(1 / min(wb))  # 1, 1.25, 1.667


def test_make_pairs_records_the_capture_and_pairs_metadata_reads_it(synthetic_dng, tmp_path):
    pairs.make_pairs_from_raw(synthetic_dng, tmp_path, patch=128, progress=False, wb=(0.8, 1.0, 1.5))
    scene = json.loads((tmp_path / "meta.json").read_text())["scenes"]["synthetic-scene"]
    assert scene["capture"] == {
        "wb": [0.8, 1.0, 1.5], "exposure_gain": 1.25, "exposure_time": None, "f_number": None, "iso": None,
        "source": "libraw (argument white balance)",
    }
    assert pairs_metadata(tmp_path) == {"synthetic-scene": CaptureMetadata((0.8, 1.0, 1.5), 1.25, "libraw (argument white balance)")}
    patches = [tmp_path / "synthetic-scene_0.jpg", tmp_path / "synthetic-scene_5.jpg", tmp_path / "other_0.jpg"]
    assert patch_captures(patches) == [pairs_metadata(tmp_path)["synthetic-scene"]] * 2 + [None]
    assert patch_captures([tmp_path / "elsewhere" / "x_0.jpg"]) == [None]
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["scenes"]["synthetic-scene"]["capture"]["wb"] = [1.0, 1.0]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="meta.json: scene synthetic-scene: wb must be 3 positive"):
        pairs_metadata(tmp_path)


# ---- RawTherapee ---------------------------------------------------------------------------------


def test_rawtherapee_capture_follows_the_profile(synthetic_dng, tmp_path):
    frame = read_raw(synthetic_dng)
    assert rt.profile_capture(None, frame).exposure_gain == 1.0
    pp3 = tmp_path / "p.pp3"
    pp3.write_text(rt.pp3_text({"Exposure": {"Auto": "false", "Compensation": "0.66"}}))
    capture = rt.profile_capture(pp3, frame)
    assert capture.exposure_gain == pytest.approx(2**0.66) and capture.wb == pytest.approx(WB, rel=1e-5)
    pp3.write_text(rt.pp3_text({"Exposure": {"Auto": "true"}}))
    assert rt.profile_capture(pp3, frame).exposure_gain is None
    pp3.write_text(rt.pp3_text({"White Balance": {"Setting": "Daylight"}}))
    assert rt.profile_capture(pp3, frame) is None


def _linear(rgb_u8):
    x = rgb_u8.astype(np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


@pytest.mark.skipif(shutil.which("rawtherapee-cli") is None, reason="rawtherapee-cli not on PATH (Debian: rawtherapee)")
def test_rawtherapee_recorded_gains_are_what_it_renders(grey_dng, tmp_path):
    frame = read_raw(grey_dng)
    pp3 = tmp_path / "plus1.pp3"
    pp3.write_text(rt.pp3_text({"Exposure": {"Compensation": "1"}}))
    plain, brighter = (get_isp("rawtherapee", profile=p) for p in (rt.NEUTRAL, str(pp3)))
    gains = [rt.profile_capture(isp.profile_path, frame).exposure_gain for isp in (plain, brighter)]
    a, b = (_linear(isp.render_rgb(frame)) for isp in (plain, brighter))
    w = a.shape[1]
    ratios = []
    for i in range(1, 5):  # the middle stripes, 8 px inside their edges
        sl = np.s_[20:-20, i * w // 6 + 8 : (i + 1) * w // 6 - 8]
        mean = a[sl].reshape(-1, 3).mean(axis=0)
        assert np.ptp(mean) < 0.02 * mean.mean(), (i, mean)  # grey: the camera white balance is the recorded one
        ratios.append(b[sl].mean() / a[sl].mean())
    np.testing.assert_allclose(ratios, gains[1] / gains[0], rtol=0.03)


# ---- darktable -----------------------------------------------------------------------------------


def test_darktable_history_params_plain_and_compressed():
    import base64
    import zlib

    raw = bytes.fromhex("000000400000803ffaffbf3f0000c07f")  # darktable 4.2's temperature params for WB (2, 1, 1.5)
    packed = "gz01" + base64.b64encode(zlib.compress(raw)).decode()
    xmp = (
        f'<rdf:li darktable:operation="temperature" darktable:enabled="1" darktable:params="{raw.hex()}"/>'
        '<rdf:li darktable:operation="exposure" darktable:enabled="0" darktable:params="00"/>'
        f'<rdf:li darktable:operation="colorin" darktable:enabled="1" darktable:params="{packed}"/>'
    )
    params = darktable.history_params(xmp)
    assert params == {"temperature": raw, "colorin": raw}
    capture = darktable.darktable_capture(xmp, "x")
    assert capture.wb == pytest.approx((2.0, 1.0, 1.5), rel=1e-6) and capture.exposure_gain == 1.0


@pytest.mark.skipif(shutil.which("darktable-cli") is None, reason="darktable-cli not on PATH (Debian: darktable)")
def test_darktable_records_the_frames_white_balance_and_its_exposure(synthetic_dng):
    frame = read_raw(synthetic_dng, wb=(1.25, 1.0, 2.5))
    capture = get_isp("darktable").render(frame).capture
    assert capture.wb == pytest.approx((1.25, 1.0, 2.5), rel=1e-5)
    if darktable.darktable_version().startswith("4.2"):
        # scene-referred default: +0.7 EV, black -0.000244 (exposure maps black -> 0, 2^-0.7 -> 1)
        assert capture.exposure_gain == pytest.approx(1 / (2**-0.7 + 0.000244), rel=1e-4)


# ---- the camera's own JPEG -----------------------------------------------------------------------


def test_camera_capture_is_the_raws_white_balance_and_the_jpegs_exif(synthetic_dng):
    exif = Image.Exif()
    ifd = exif.get_ifd(camera.EXIF_IFD)
    ifd[0x829A], ifd[0x829D], ifd[0x8827] = 0.008, 5.6, 400
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG", exif=exif)
    capture = camera.camera_capture(read_raw(synthetic_dng), buf.getvalue())
    assert capture.wb == pytest.approx(WB, rel=1e-5) and capture.exposure_gain is None
    assert (capture.exposure_time, capture.f_number, capture.iso) == pytest.approx((0.008, 5.6, 400))
    plain = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain, "JPEG")
    assert camera.camera_capture(read_raw(synthetic_dng), plain.getvalue()).exposure_time is None
    headerless = read_raw(synthetic_dng)
    import dataclasses

    assert camera.camera_capture(dataclasses.replace(headerless, wb=None, wb_source="unknown"), plain.getvalue()) is None
