"""Pairs rendered by RawTherapee: exact RAW values under a render that lost its border, located to the pixel.

RawTherapee's output lacks a few pixels on every side, so where it lies on the mosaic is found
(`align.locate_render`). Proven three ways: the written pairs peak at zero shift under the NumPy
gradient reference of test_pairs_darktable; a render cropped by a known 1-3 px is located at
exactly that much further (its pixels then equal the uncropped render's, exactly); and a profile
that crops, resizes and rotates renders the same geometry (the geometry pins win).
"""

import importlib.util
import json
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from data_gen import np_pack, np_unpack
from test_pairs import LEVELS, RGGB_COLORS, WB, ref_rawpy_stored, synthetic_camera_rgb
from test_pairs_darktable import ref_best, ref_gradient_scores

from revisp_tf.cli import main
from revisp_tf.data import pairs
from revisp_tf.data.align import render as align
from revisp_tf.data.isps import get_isp
from revisp_tf.data.isps import rawtherapee as rt
from revisp_tf.data.isps.common import canonical_mosaic
from revisp_tf.data.raw_files import RawReadError, normalise, read_raw
from revisp_tf.io.dng import write_dng

needs_rawtherapee = pytest.mark.skipif(
    shutil.which("rawtherapee-cli") is None,
    reason="rawtherapee-cli not on PATH (Debian: apt-get install -y rawtherapee)",
)
CROPS = [(1, 0), (0, 3), (2, 1), (3, 2)]  # deliberate crops of the render: (rows, columns) off its top-left
REAL_CROPS = [(1, 2), (3, 3)]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_real_pairs.py"


@pytest.fixture(scope="module")
def synthetic_dng(tmp_path_factory):
    """A GRBG DNG of the synthetic scene (edges, a clipped block); RawTherapee wants 256 px or more on a side."""
    cam = synthetic_camera_rgb(262, 390) / np.asarray(WB)
    plane = np.take_along_axis(cam, np.tile(RGGB_COLORS, (131, 195))[..., None], axis=-1)[..., 0]
    path = tmp_path_factory.mktemp("dng") / "synthetic_scene.dng"
    return write_dng(path, np_pack(plane).astype(np.float32), LEVELS, cfa="GRBG", wb_gains=WB)


@pytest.fixture(scope="module")
def raw_render(synthetic_dng):
    """(frame, RawTherapee's unplaced render) of the synthetic DNG with the default profile."""
    if shutil.which("rawtherapee-cli") is None:
        pytest.skip("rawtherapee-cli not on PATH (Debian: apt-get install -y rawtherapee)")
    frame = read_raw(synthetic_dng)
    return frame, get_isp("rawtherapee").render_rgb(frame)


def check_located_crops(frame, rgb, crops=CROPS):
    """The render and deliberately cropped copies: located at base + crop, margins; returns (base, margins)."""
    raw = canonical_mosaic(normalise(frame), frame.cfa)
    base, base_margin = align.locate_render(rgb, raw)
    full = rt.place_render(frame, rgb)
    margins = [base_margin]
    for dy, dx in crops:
        placed = rt.place_render(frame, rgb[dy:, dx:])
        assert placed.alignment["found_offset"] == [base[0] + dy, base[1] + dx], (dy, dx)
        oy, ox = placed.origin
        assert oy % 2 == 0 and ox % 2 == 0
        h, w = placed.rgb.shape[:2]
        # the same pixels as the uncropped render at the same mosaic position, exactly
        fy, fx = oy - full.origin[0], ox - full.origin[1]
        np.testing.assert_array_equal(placed.rgb, full.rgb[fy : fy + h, fx : fx + w])
        margins.append(placed.alignment["margin"])
    return base, margins


def test_missing_rawtherapee_cli_is_one_clear_error_and_writes_nothing(synthetic_dng, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="^rawtherapee-cli not found: install Debian's rawtherapee$"):
        pairs.make_pairs_from_raw(synthetic_dng, out, patch=128, isp="rawtherapee", progress=False)
    assert not out.exists()
    result = CliRunner().invoke(main, ["make-pairs", str(synthetic_dng), "--out", str(out), "--isp", "rawtherapee"])
    assert result.exit_code == 2 and result.output == "error: rawtherapee-cli not found: install Debian's rawtherapee\n"


def test_profile_only_for_rawtherapee(synthetic_dng, tmp_path):
    with pytest.raises(ValueError, match="only the rawtherapee and infinite-isp ISPs take a profile, got one for darktable"):
        pairs.make_pairs_from_raw(synthetic_dng, tmp_path, isp="darktable", profile="Pop 2 Lab", progress=False)


@needs_rawtherapee
def test_profiles_by_bundled_name_or_pp3_path_and_unknown_names_list_the_choices(tmp_path):
    path = rt.resolve_profile("Pop 2 Lab")
    assert path.parts[-2:] == ("Pop", "Pop 2 Lab.pp3") and "[EPD]\nEnabled=true" in path.read_text()
    assert rt.resolve_profile(rt.NEUTRAL) is None
    with pytest.raises(ValueError, match=r"no RawTherapee profile named 'Pop 9'; .*'Neutral', .*'Pop 2 Lab'"):
        rt.resolve_profile("Pop 9")
    with pytest.raises(ValueError, match="mine.pp3 is not a file"):
        rt.resolve_profile(str(tmp_path / "mine.pp3"))
    result = CliRunner().invoke(main, ["make-pairs", "x.dng", "--out", str(tmp_path), "--isp", "rawtherapee", "--profile", "Pop 9"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "no RawTherapee profile named 'Pop 9'" in result.output


def test_geometry_pins_as_pp3_text():
    text = rt.pp3_text({"Crop": {"Enabled": "false"}, "RAW": {"CA": "false"}})
    assert text == "[Crop]\nEnabled=false\n\n[RAW]\nCA=false\n"
    for section in ("Crop", "Resize", "Rotation", "Distortion", "LensProfile", "Coarse Transformation", "RAW"):
        assert section in rt.GEOMETRY_PINS


@needs_rawtherapee
def test_rawtherapee_pairs_equal_raw_values_and_align(synthetic_dng, tmp_path):
    out = tmp_path / "out"
    summary = pairs.make_pairs_from_raw(synthetic_dng, out, patch=128, isp="rawtherapee", progress=False)
    assert summary["patches"] == 2 and summary["failed"] == []  # 254 x 378 on the mosaic: a 1 x 2 grid
    meta = json.loads((out / "meta.json").read_text())
    scene = meta["scenes"]["synthetic-scene"]
    assert scene["canonical_shape"] == [262, 386] and scene["canonical_offset"] == [0, 1]
    assert scene["render_origin"] == [4, 4] and scene["render_shape"] == [254, 378]
    assert scene["alignment"]["rendered_shape"] == [254, 378] and scene["alignment"]["found_offset"] == [4, 4]
    assert scene["alignment"]["margin"] > 0.1 and scene["jpeg_quality"] == 92
    source = ref_rawpy_stored(synthetic_dng)
    for e in scene["patches"]:
        assert (e["y"], e["x"]) == (4 + 128 * e["row"], 5 + 128 * e["col"])  # render origin + GRBG crop
        npy = np.load(out / f"synthetic-scene_{e['k']}.npy")
        np.testing.assert_array_equal(npy, np_pack(source[e["y"] : e["y"] + 128, e["x"] : e["x"] + 128]))
        rgb = cv2.imread(str(out / f"synthetic-scene_{e['k']}.jpg"))[..., ::-1]
        shift, margin = ref_best(ref_gradient_scores(rgb, np_unpack(npy)))
        assert shift == (0, 0) and margin > 0.05, (e, shift, margin)
    assert meta["isp"] == "rawtherapee" and re.fullmatch(r"\d+\.\d+(\.\d+)?", meta["rawtherapee_version"])
    assert meta["render"]["profile"] == "Pop 2 Lab" and meta["render"]["geometry_pins"] == rt.GEOMETRY_PINS
    with pytest.raises(ValueError, match="holds pairs rendered by rawtherapee profile 'Pop 2 Lab'"):
        pairs.make_pairs_from_raw(synthetic_dng, out, patch=128, isp="rawtherapee", profile="Neutral", progress=False)


@needs_rawtherapee
def test_deliberately_cropped_renders_are_located(raw_render):
    frame, rgb = raw_render
    base, margins = check_located_crops(frame, rgb)
    assert base == (4, 4) and min(margins) > 0.1, margins


@needs_rawtherapee
def test_a_render_of_another_scene_is_refused(raw_render):
    frame, rgb = raw_render
    noise = np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8)
    with pytest.raises(RawReadError, match="synthetic_scene.dng: RawTherapee's render aligns at .* margin of only"):
        rt.place_render(frame, noise)


@needs_rawtherapee
def test_geometry_in_a_users_profile_is_pinned(synthetic_dng, tmp_path, raw_render):
    pp3 = tmp_path / "mine.pp3"
    moves = {
        "Crop": {"Enabled": "true", "X": "40", "Y": "30", "W": "200", "H": "150"},
        "Resize": {"Enabled": "true", "Scale": "0.5", "AppliesTo": "Full image", "Method": "Lanczos"},
        "Rotation": {"Degree": "5"},
        "Coarse Transformation": {"Rotate": "90", "HorizontalFlip": "true"},
    }
    pp3.write_text(rt.pp3_text({**moves, "Exposure": {"Compensation": "1"}}))
    frame, default_rgb = raw_render
    placed = get_isp("rawtherapee", profile=str(pp3)).render(frame)
    assert placed.alignment["rendered_shape"] == list(default_rgb.shape[:2]) and placed.origin == (4, 4)
    assert placed.alignment["margin"] > 0.1


# ---- real sensor files (../shared/realdata) -------------------------------------------------------


def _real_files():
    spec = importlib.util.spec_from_file_location("make_real_pairs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@needs_rawtherapee
def test_every_real_raw_file_renders_and_is_located(realdata):
    table = _real_files()
    raw_dir = realdata / "raw"
    isp = get_isp("rawtherapee")
    report = []
    for rel, spec in table.FILES.items():
        frame = read_raw(raw_dir / rel, **table.raw_kwargs(raw_dir, spec))
        t0 = time.perf_counter()
        base, margins = check_located_crops(frame, isp.render_rgb(frame), REAL_CROPS)
        report.append((rel, base, round(min(margins), 3), round(time.perf_counter() - t0, 1)))
        assert base == (4, 4) and min(margins) > 0.1, report[-1]
    print(report)


# ---- RawTherapee's own geometry tools: the camera-JPEG test bed's known map ---------------------


def ref_rt_source(q, image_shape, crop, scale, degree, amount):
    """NumPy reading of RawTherapee's transformGeneral + Lanczos resize: output (x, y) -> source (x, y)."""
    h, w = image_shape
    w2, h2 = w / 2.0 - 0.5, h / 2.0 - 0.5
    x = (q[:, 0] + 0.5) / scale - 0.5 + crop[0] - w2
    y = (q[:, 1] + 0.5) / scale - 0.5 + crop[1] - h2
    cost, sint = np.cos(np.radians(degree)), np.sin(np.radians(degree))
    dx, dy = x * cost - y * sint, x * sint + y * cost
    s = 1.0 - amount + amount * np.sqrt(dx * dx + dy * dy) / (np.sqrt(w * w + h * h) / 2.0)
    return np.stack([dx * s + w2, dy * s + h2], axis=-1)


def quadrant_shifts(a, b):
    """Phase-correlation shift (px) of b against a in each quarter of the frame (float grey images)."""
    h, w = a.shape
    out = []
    for y0, y1 in ((4, h // 2), (h // 2, h - 4)):
        for x0, x1 in ((4, w // 2), (w // 2, w - 4)):
            win = cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_64F)
            (dx, dy), _ = cv2.phaseCorrelate(a[y0:y1, x0:x1].copy(), b[y0:y1, x0:x1].copy(), win)
            out.append(np.hypot(dx, dy))
    return np.array(out)


@needs_rawtherapee
def test_rawtherapee_geometry_tools_make_the_documented_map(raw_render, tmp_path):
    frame, plain = raw_render
    geometry = rt.inside_crop(plain.shape[:2], scale=0.9, rotation_deg=0.8, distortion=0.06)
    x, y, w, h = geometry.crop
    assert geometry.output_shape() == (int(h * 0.9 + 0.5), int(w * 0.9 + 0.5))
    png = get_isp("rawtherapee").render_file(frame, tmp_path / "g.png", geometry)
    moved = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2GRAY).astype(np.float64)
    assert moved.shape == geometry.output_shape() and list(tmp_path.iterdir()) == [png]
    oh, ow = moved.shape
    ys, xs = np.mgrid[0:oh, 0:ow]
    q = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64)
    np.testing.assert_allclose(geometry.source(q, plain.shape[:2]), ref_rt_source(q, plain.shape[:2], (x, y), 0.9, 0.8, 0.06), atol=1e-9)
    grey = cv2.cvtColor(plain, cv2.COLOR_RGB2GRAY).astype(np.float32)

    def shifts(**change):
        args = {"crop": (x, y), "scale": 0.9, "degree": 0.8, "amount": 0.06, **change}
        src = ref_rt_source(q, plain.shape[:2], **args).astype(np.float32).reshape(oh, ow, 2)
        resampled = cv2.remap(grey, src[..., 0], src[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        return quadrant_shifts(resampled.astype(np.float64), moved)

    assert shifts().max() < 0.15, shifts()  # 0.07-0.10 px: RawTherapee's bicubic against OpenCV's
    # the other rotation sense or distortion sign is 2.5-5.7 px off in every quarter
    assert shifts(degree=-0.8).min() > 1.0 and shifts(amount=-0.06).min() > 1.0, (shifts(degree=-0.8), shifts(amount=-0.06))
