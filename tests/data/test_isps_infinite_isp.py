"""Pairs rendered by Infinite-ISP: exact RAW values, a render aligned to the pixel, and the 3A gains it applied.

Infinite-ISP (../shared/isps/infinite-isp, through REVISP_INFINITE_ISP) takes ~7 s on a 256 x 384
crop of one of its sensor's real 8-bit frames, so the renders are of such a crop. Alignment is
proven as for darktable: the NumPy gradient reference (test_pairs_darktable) peaks at zero shift
on every pair and finds a deliberately shifted render. The recorded gains are proven by rendering
again with the 3A off and those gains set by hand: the same pixels; one digital-gain step or one
white-balance step off, other pixels. The white balance also matches a NumPy gray world over the
same statistics window.
"""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from data_gen import np_pack, np_unpack
from test_pairs_darktable import SHIFTS, ref_best, ref_gradient_scores

from revisp_tf.cli import main
from revisp_tf.data import pairs
from revisp_tf.data.align import render as align
from revisp_tf.data.isps import get_isp
from revisp_tf.data.isps import infinite_isp as iisp
from revisp_tf.data.isps.common import canonical_mosaic
from revisp_tf.data.raw_files import RawFrame, normalise, read_raw

SCENE = "Outdoor1"
CROP = (600, 1000, 256, 384)  # y, x, h, w of the 1536 x 2592 frame: buildings, sky and a ColorChecker edge
BLACK, WHITE = 12, 255  # the 8-bit frames' levels (README of ../shared/realdata)


@pytest.fixture(scope="module")
def checkout(realdata):
    path = Path(os.environ.get(iisp.ENV) or realdata.parent / "isps" / "infinite-isp")
    if not (path / "infinite_isp.py").is_file():
        pytest.skip(f"Infinite-ISP checkout not found at {path}")
    pytest.importorskip("fxpmath", reason="Infinite-ISP's dependencies: pip install 'revisp-tf[infinite-isp]'")
    return path


@pytest.fixture
def with_checkout(checkout, monkeypatch):
    monkeypatch.setenv(iisp.ENV, str(checkout))
    return checkout


@pytest.fixture(scope="module")
def crop_raw(realdata, tmp_path_factory):
    """(headerless 8-bit GRBG crop of a real frame, its config, read_raw arguments)."""
    folder = realdata / "raw" / "infinite_isp_grbg8"
    full = np.fromfile(folder / f"{SCENE}_2592x1536_8bit_GRBG.raw", np.uint8).reshape(1536, 2592)
    y, x, h, w = CROP
    path = tmp_path_factory.mktemp("iisp") / f"{SCENE}_crop.raw"
    full[y : y + h, x : x + w].tofile(path)
    kwargs = dict(shape=(h, w), dtype="uint8", cfa="GRBG", black=BLACK, white=WHITE)
    return path, folder / f"{SCENE}_2592x1536_10bit_GRBG-configs.yml", kwargs


@pytest.fixture(scope="module")
def rendered(crop_raw, checkout):
    """(frame, uint8 render of the whole crop, the driver's gains) with the 3A on."""
    path, config, kwargs = crop_raw
    mp = pytest.MonkeyPatch()
    mp.setenv(iisp.ENV, str(checkout))
    try:
        frame = read_raw(path, **kwargs)
        rgb, gains = get_isp("infinite-isp", profile=str(config)).run(frame)
    finally:
        mp.undo()
    return frame, rgb, gains


def _frame(cfa, black, white, shape=(8, 12)):
    return RawFrame(np.zeros(shape, np.uint16), cfa, black, white, None, None, None, "headerless")


# ---- no checkout, no dependencies, no config: one line each --------------------------------------


def test_missing_checkout_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(iisp.ENV, raising=False)
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=f"^Infinite-ISP not found: set {iisp.ENV} to a checkout"):
        pairs.make_pairs_from_raw(tmp_path / "x.raw", out, isp="infinite-isp", profile="c.yml", progress=False)
    result = CliRunner().invoke(main, ["make-pairs", "x.raw", "--out", str(out), "--isp", "infinite-isp", "--profile", "c.yml"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and f"set {iisp.ENV}" in result.output
    assert not out.exists()
    monkeypatch.setenv(iisp.ENV, str(tmp_path))  # a folder without the ISP in it
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has none"):
        get_isp("infinite-isp", profile="c.yml")


def test_missing_dependencies_name_the_extra(tmp_path, monkeypatch):
    (tmp_path / "infinite_isp.py").write_text("")
    monkeypatch.setenv(iisp.ENV, str(tmp_path))
    monkeypatch.setattr(iisp, "DEPENDENCIES", ("numpy", "no_such_module_xyz"))
    with pytest.raises(FileNotFoundError, match=r"missing \(no_such_module_xyz\): pip install 'revisp-tf\[infinite-isp\]'"):
        get_isp("infinite-isp", profile="c.yml")


def test_config_is_required_and_checked(tmp_path, with_checkout):
    with pytest.raises(ValueError, match="needs the sensor's Infinite-ISP config"):
        get_isp("infinite-isp")
    bad = tmp_path / "bad.yml"
    bad.write_text("sensor_info: {}\n")
    with pytest.raises(ValueError, match=r"bad.yml has no black_level_correction, .* section\(s\)"):
        get_isp("infinite-isp", profile=str(bad))


# ---- the sensor fields come from the RAW ---------------------------------------------------------


def test_channel_names_of_every_cfa():
    # hand table: the green sharing a row with red is Gr
    assert iisp.channel_names("RGGB") == ["r", "gr", "gb", "b"]
    assert iisp.channel_names("GRBG") == ["gr", "r", "b", "gb"]
    assert iisp.channel_names("GBRG") == ["gb", "b", "r", "gr"]
    assert iisp.channel_names("BGGR") == ["b", "gb", "gr", "r"]


def test_bit_depth_holds_the_white_level():
    assert [iisp.bit_depth(w) for w in (255, 256, 1023, 4095, 15000, 16383)] == [8, 10, 10, 12, 14, 14]
    with pytest.raises(ValueError, match="white level 65535 needs more than 14 bits"):
        iisp.bit_depth(65535)


def test_sensor_config_from_the_raw_and_pins(realdata):
    config = iisp.load_config(realdata / "raw" / "infinite_isp_grbg8" / f"{SCENE}_2592x1536_10bit_GRBG-configs.yml")
    assert config["sensor_info"]["bit_depth"] == 10 and config["on_screen_display"]["is_enable"] is True
    eight = iisp.sensor_config(config, _frame("GRBG", (12.0, 13.0, 14.0, 15.0), 255.0))
    assert eight["sensor_info"] == {"bayer_pattern": "grbg", "range": 255, "bit_depth": 8, "width": 12, "height": 8}
    blc = eight["black_level_correction"]
    assert (blc["gr_offset"], blc["r_offset"], blc["b_offset"], blc["gb_offset"]) == (12.0, 13.0, 14.0, 15.0)
    assert {blc[f"{c}_sat"] for c in ("r", "gr", "gb", "b")} == {255.0}
    assert eight["oecf"]["is_enable"] is False  # the LUT is the 10-bit config's
    assert eight["on_screen_display"]["is_enable"] is False and eight["crop"]["is_enable"] is False
    assert eight["scale"]["is_enable"] is False and eight["invalid_region_crop"]["is_enable"] is False
    assert eight["platform"]["filename"] == "frame.raw"
    ten = iisp.sensor_config(config, _frame("RGGB", (50.0,) * 4, 1023.0))
    assert ten["oecf"]["is_enable"] is True and ten["sensor_info"]["bayer_pattern"] == "rggb"
    assert ten["black_level_correction"]["r_offset"] == 50.0 and ten["black_level_correction"]["b_sat"] == 1023.0
    assert config["on_screen_display"]["is_enable"] is True  # the loaded config itself is untouched


# ---- real renders (a crop of a real 8-bit frame) -------------------------------------------------


@pytest.mark.slow
def test_infinite_isp_pairs_equal_raw_values_align_and_record_the_gains(crop_raw, with_checkout, tmp_path):
    path, config, kwargs = crop_raw
    summary = pairs.make_pairs_from_raw(path, tmp_path, patch=128, isp="infinite-isp", profile=str(config), progress=False, **kwargs)
    assert summary["patches"] == 4 and summary["failed"] == []  # 256 x 382 after the GRBG crop: a 2 x 2 grid
    meta = json.loads((tmp_path / "meta.json").read_text())
    scene = meta["scenes"][f"{SCENE}-crop"]  # make-pairs scene names keep no "_"
    assert scene["canonical_offset"] == [0, 1] and scene["render_origin"] == [0, 0] and scene["render_shape"] == [256, 382]
    raw = np.fromfile(path, np.uint8).reshape(kwargs["shape"]).astype(np.float64)
    stored = np.round(1023 * np.clip((raw - BLACK) / (WHITE - BLACK), 0, 1)).astype(np.uint16)
    margins = []
    for e in scene["patches"]:
        npy = np.load(tmp_path / f"{SCENE}-crop_{e['k']}.npy")
        np.testing.assert_array_equal(npy, np_pack(stored[e["y"] : e["y"] + 128, e["x"] : e["x"] + 128]))
        rgb = cv2.imread(str(tmp_path / f"{SCENE}-crop_{e['k']}.jpg"))[..., ::-1]
        shift, margin = ref_best(ref_gradient_scores(rgb, np_unpack(npy)))
        assert shift == (0, 0), (e, shift)
        margins.append(margin)
    assert min(margins) > 0.05, margins
    capture = scene["capture"]
    assert capture["source"] == "infinite-isp 3A" and capture["wb"][1] == 1.0
    assert 1.5 < capture["wb"][0] < 2.5 and 1.8 < capture["wb"][2] < 3.2, capture  # daylight on this sensor
    assert capture["exposure_gain"] in yaml.safe_load(config.read_text())["digital_gain"]["gain_array"]
    assert meta["isp"] == "infinite-isp" and meta["render"]["pinned"] == iisp.PINS
    assert len(meta["infinite_isp_commit"]) == 40


@pytest.mark.slow
def test_a_deliberately_shifted_render_is_found(rendered):
    frame, rgb, _ = rendered
    raw = canonical_mosaic(normalise(frame), frame.cfa)
    placed = canonical_mosaic(rgb, frame.cfa)
    assert ref_best(ref_gradient_scores(placed, raw))[0] == (0, 0)
    for dy, dx in SHIFTS:
        shifted = np.roll(placed, (dy, dx), axis=(0, 1))
        assert ref_best(ref_gradient_scores(shifted, raw))[0] == (dy, dx)
        assert align.best_shift(align.gradient_alignment_scores(shifted, raw)) == (dy, dx)


def ref_gray_world(frame, window=16, percent=2.5, gain=1.0):
    """NumPy gray world over Infinite-ISP's AWB statistics window: tiles with no channel within `percent` of either end."""
    depth = 8
    top = 2**depth - 1
    x = (frame.mosaic.astype(np.float64) - BLACK) * top / (WHITE - BLACK)
    x = np.clip(np.round(x * gain), 0, top)[window:-window, window:-window]
    gr, r, b, gb = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]  # GRBG
    tiles = np.stack([r, gr, gb, b], -1).reshape(-1, 4)
    lo, hi = int(top * percent / 100), top - int(top * percent / 100)
    keep = tiles[((tiles > lo) & (tiles < hi)).all(axis=1)]
    g = keep[:, 1:3].sum(axis=0).mean()
    return g / keep[:, 0].sum(), g / keep[:, 3].sum()


@pytest.mark.slow
def test_recorded_gains_are_the_gains_applied(rendered, crop_raw, with_checkout, tmp_path):
    frame, rgb, gains = rendered
    capture = iisp.capture_of(gains)
    _, config_path, _ = crop_raw
    config = yaml.safe_load(config_path.read_text())
    index = config["digital_gain"]["gain_array"].index(capture.exposure_gain)
    assert index == gains["dga_current_gain"]
    np.testing.assert_allclose(gains["awb_gains"], gains["wb_applied"])  # the 3A converged: its last AWB is what was applied
    # gray world in NumPy on the same window (Infinite-ISP's noise reduction comes before its statistics)
    ref_r, ref_b = ref_gray_world(frame, gain=capture.exposure_gain)
    np.testing.assert_allclose([capture.wb[0], capture.wb[2]], [ref_r, ref_b], rtol=0.02)

    def by_hand(r_gain, b_gain, gain_index):
        fixed = json.loads(json.dumps(config))
        fixed["platform"]["render_3a"] = False
        fixed["white_balance"].update(is_auto=False, r_gain=r_gain, b_gain=b_gain)
        fixed["digital_gain"].update(is_auto=False, current_gain=gain_index, ae_feedback=0)
        path = tmp_path / f"fixed_{r_gain}_{b_gain}_{gain_index}.yml"
        path.write_text(yaml.safe_dump(fixed))
        return get_isp("infinite-isp", profile=str(path)).run(frame)[0]

    np.testing.assert_array_equal(by_hand(capture.wb[0], capture.wb[2], index), rgb)
    other_gain = by_hand(capture.wb[0], capture.wb[2], index + 1).astype(np.float64)
    assert other_gain.mean() > rgb.mean() + 10  # one digital-gain step brighter
    other_wb = by_hand(capture.wb[0] + 0.25, capture.wb[2], index).astype(np.float64)
    assert other_wb[..., 0].mean() > rgb[..., 0].mean() + 3 and abs(other_wb[..., 2].mean() - rgb[..., 2].mean()) < 3
