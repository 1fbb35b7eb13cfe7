"""Capture metadata for inference: a camera JPEG's maker notes (ExifTool), a JSON file, or --wb / --exposure-gain.

The reference for the six real camera JPEGs is the table in ../shared/realdata/README.md (the
values ExifTool 12.57 prints); the DNG's AsShotNeutral is read back with tifffile.
"""

import json
import re
import shutil
from fractions import Fraction

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from revisp_tf.cli import main
from revisp_tf.io import metadata as md
from revisp_tf.io.metadata import CaptureMetadata
from revisp_tf.models import build_reverse_isp

needs_exiftool = pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="exiftool not on PATH (Debian: apt-get install -y libimage-exiftool-perl)"
)
PHONE = "10_0.jpg"  # an S7 patch of aim22_s7_rgb: a phone JPEG, no maker notes


def readme_table(realdata):
    """{file: (RedBalance, BlueBalance, ExposureTime, FNumber, ISO)} from the camera_jpeg_metadata table of the README."""
    text = (realdata / "README.md").read_text().split("## camera_jpeg_metadata/")[1]
    rows = re.findall(r"^\| (\w+\.jpg) \| [^|]+ \| ([\d.]+) \| ([\d.]+) \| ([\d/]+) \| ([\d.]+) \| (\d+) \|$", text, re.M)
    return {f: (float(r), float(b), float(Fraction(t)), float(n), float(iso)) for f, r, b, t, n, iso in rows}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    m = build_reverse_isp("single", base_filters=2, depth=2)
    head = m.get_layer("unet").get_layer("head")
    head.set_weights([np.zeros_like(head.kernel.numpy()), np.array([0.2, 0.5, 0.7], np.float32)])
    path = tmp_path_factory.mktemp("model") / "m.keras"
    m.save(path)
    return path


def as_shot_neutral(dng):
    with tifffile.TiffFile(dng) as tif:
        v = tif.pages[0].tags[50728].value
    return np.array(v[0::2], np.float64) / np.array(v[1::2], np.float64)


def infer(*args):
    return CliRunner().invoke(main, ["infer", *map(str, args)])


@needs_exiftool
def test_exif_white_balance_of_six_camera_jpegs_is_the_readme_table(realdata):
    table = readme_table(realdata)
    assert len(table) == 6
    folder = realdata / "camera_jpeg_metadata"
    found = md.capture_metadata_for([folder / f for f in table], "exif")
    for f, (red, blue, t, n, iso) in table.items():
        c = found[folder / f]
        # the README prints ExifTool's values to 6 decimals (half up): 2.1953125 -> 2.195313
        assert abs(c.wb[0] - red) <= 5.000001e-7 and abs(c.wb[2] - blue) <= 5.000001e-7 and c.wb[1] == 1.0, (f, c.wb)
        assert (c.exposure_time, c.f_number, c.iso) == pytest.approx((t, n, iso), rel=1e-6), f
        assert c.exposure_gain is None and c.source == "exif"
    assert md.capture_metadata_for([realdata / "aim22_s7_rgb" / PHONE], "exif") == {realdata / "aim22_s7_rgb" / PHONE: None}


@needs_exiftool
def test_infer_metadata_exif_writes_the_cameras_white_balance_and_says_when_there_is_none(realdata, model_path, tmp_path):
    canon = realdata / "camera_jpeg_metadata" / "Canon.jpg"
    phone = shutil.copy(realdata / "aim22_s7_rgb" / PHONE, tmp_path / PHONE)
    result = infer(canon, phone, "--model", model_path, "--out", tmp_path / "out", "--format", "dng", "--metadata", "exif")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "capture metadata" in line]
    assert lines == [f"no capture metadata (white balance) in 1 file(s): {phone}; the model's frame-gain prior estimates their gains"]
    np.testing.assert_allclose(as_shot_neutral(tmp_path / "out" / "Canon.dng"), [1 / 2.06734816596512, 1, 1 / 1.19061936259772], rtol=2e-6)
    assert np.abs(as_shot_neutral(tmp_path / "out" / "10_0.dng") - [1 / 2.067348, 1, 1 / 1.190619]).max() > 0.05  # its own fit


def test_infer_wb_and_json_metadata_go_into_the_dng(realdata, model_path, tmp_path):
    image = shutil.copy(realdata / "aim22_s7_rgb" / PHONE, tmp_path / PHONE)
    result = infer(image, "--model", model_path, "--out", tmp_path / "a", "--format", "dng", "--wb", "2,1.6", "--exposure-gain", "1.5")
    assert result.exit_code == 0 and "capture metadata" not in result.output, result.output
    np.testing.assert_allclose(as_shot_neutral(tmp_path / "a" / "10_0.dng"), [0.5, 1, 1 / 1.6], rtol=1e-6)
    given = tmp_path / "m.json"
    given.write_text(json.dumps({"10_0": CaptureMetadata((1.8, 1.0, 1.25), 2.0, "json").to_json()}))
    result = infer(image, "--model", model_path, "--out", tmp_path / "b", "--format", "dng", "--metadata", given)
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(as_shot_neutral(tmp_path / "b" / "10_0.dng"), [1 / 1.8, 1, 0.8], rtol=1e-6)


def test_a_global_stage_model_applies_the_given_gains_exactly(tmp_path):
    """The RAW of --wb R,B --exposure-gain G is the RAW of unit gains divided by (wb_c * G), channel by channel."""
    import cv2

    from revisp_tf.isp.sensor import PROJECT_10BIT

    model = build_reverse_isp("global", global_stage="fitted")
    model.get_layer("frame_gains").recorded.assign(1.0)  # as the fit phase leaves curves fitted on balanced RAW
    path = tmp_path / "g.keras"
    model.save(path)
    image = tmp_path / "a.png"
    y, x = np.mgrid[:64, :96]
    cv2.imwrite(str(image), np.stack([x + 60, y + 80, x + y + 40], -1).astype(np.uint8))  # mid-tones: no clip
    raws = {}
    for name, args in (("unit", ["--wb", "1,1", "--exposure-gain", "1"]), ("given", ["--wb", "2,1.6", "--exposure-gain", "1.25"])):
        result = infer(image, "--model", path, "--out", tmp_path / name, "--sensor", "project", *args)
        assert result.exit_code == 0, result.output
        raws[name] = PROJECT_10BIT.to_model_units(np.load(tmp_path / name / "a.npy"))
    ratio = raws["given"].reshape(-1, 4).sum(0) / raws["unit"].reshape(-1, 4).sum(0)
    np.testing.assert_allclose(ratio, 1 / (np.array([2.0, 1.0, 1.0, 1.6]) * 1.25), rtol=5e-3)  # 10-bit rounding


def test_metadata_options_are_checked_in_one_line(tmp_path, monkeypatch, model_path):
    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), np.full((8, 8, 3), 128, np.uint8))
    for args, expect in [
        (["--wb", "2"], "error: --wb: expected R,B"),
        (["--wb", "2,-1"], "error: --wb: expected R,B"),
        (["--exposure-gain", "1.5"], "error: --exposure-gain: give the white balance too"),
        (["--wb", "2,1.5", "--exposure-gain", "0"], "error: infer: --exposure-gain must be a positive number"),
        (["--metadata", "maker"], "error: --metadata: expected exif, none or a .json file, got 'maker'"),
        (["--metadata", tmp_path / "none.json"], "none.json: cannot read it as JSON"),
    ]:
        result = infer(image, "--model", model_path, "--out", tmp_path / "out", *args)
        assert result.exit_code == 2 and result.output.count("\n") == 1 and expect in result.output, (args, result.output)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = infer(image, "--model", model_path, "--out", tmp_path / "out", "--metadata", "exif")
    assert result.exit_code == 2 and result.output == "error: exiftool not found: install Debian's libimage-exiftool-perl\n"
    assert not (tmp_path / "out").exists()


def test_arguments_override_the_source(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    given = tmp_path / "m.json"
    given.write_text(json.dumps(CaptureMetadata((1.8, 1.0, 1.25), 2.0, "json", iso=100).to_json()))
    found = md.capture_metadata_for([a, b], str(given), exposure_gain=3.0)
    assert found[a] == CaptureMetadata((1.8, 1.0, 1.25), 3.0, "json + argument", iso=100) == found[b]
    found = md.capture_metadata_for([a], "none", wb=(2.0, 1.0, 1.5))
    assert found[a] == CaptureMetadata((2.0, 1.0, 1.5), None, "argument")
    given.write_text(json.dumps({"a": CaptureMetadata((1.8, 1.0, 1.25), None, "json").to_json()}))
    assert md.capture_metadata_for([a, b], str(given)) == {a: CaptureMetadata((1.8, 1.0, 1.25), None, "json"), b: None}
    assert md.capture_from_exif({"RedBalance": 2.0, "BlueBalance": 1.5, "ISO": "0 200", "ExposureTime": 0}).iso == 200.0
    assert md.capture_from_exif({"ExposureTime": 0.01, "ISO": 100}) is None  # a phone: exposure, but no white balance
