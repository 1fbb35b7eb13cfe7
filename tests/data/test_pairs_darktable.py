"""Pairs rendered by darktable: exact RAW values, and a render aligned with them to the pixel.

darktable's scene-referred render (exposure, filmic, highlight reconstruction) is far from a
global function of the RAW, so alignment is proven on local structure: a NumPy reference of
the gradient statistic (independent of revisp_tf.isp.bayer) must peak at zero shift on every
pair and find a deliberately shifted render.
"""

import json
import re
import shutil
import subprocess
import tempfile

import cv2
import numpy as np
import pytest
from data_gen import np_mosaic, np_pack, np_unpack
from test_pairs import LEVELS, RGGB_COLORS, WB, ref_rawpy_stored, synthetic_camera_rgb

from revisp_tf.data import pairs
from revisp_tf.data.align import render as align
from revisp_tf.data.isps.common import canonical_mosaic
from revisp_tf.data.isps.darktable import darktable_conf, render_darktable
from revisp_tf.data.isps.libraw import render_libraw
from revisp_tf.data.raw_files import normalise, read_raw
from revisp_tf.io.dng import write_dng

needs_darktable = pytest.mark.skipif(
    shutil.which("darktable-cli") is None, reason="darktable-cli not on PATH (Debian: apt-get install -y darktable)"
)
SHIFTS = [(0, 1), (1, 0), (1, 1), (-2, 1), (2, -2)]


def ref_gradient_scores(rgb_u8, raw_plane, max_shift=2):
    """Per shift: mean Pearson correlation of the vertical and horizontal differences of each packed channel.

    The RAW is encoded as raw ** (1 / 2.2); the RGB (sRGB, shifted by (dy, dx)) is re-mosaiced as RGGB.
    """
    x = rgb_u8.astype(np.float64) / 255.0
    enc = np.clip(raw_plane.astype(np.float64), 0, None) ** (1 / 2.2)
    h, w = raw_plane.shape
    m = 2
    a = np_pack(enc[m : h - m, m : w - m])
    hh, ww, _ = a.shape
    scores = np.zeros((2 * max_shift + 1,) * 2)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            b = np_mosaic(x[m + dy : h - m + dy, m + dx : w - m + dx])
            corrs = [
                np.corrcoef(
                    np.diff(a[..., c], axis=axis)[: hh - 1, : ww - 1].ravel(),
                    np.diff(b[..., c], axis=axis)[: hh - 1, : ww - 1].ravel(),
                )[0, 1]
                for c in range(4)
                for axis in (0, 1)
            ]
            scores[dy + max_shift, dx + max_shift] = np.mean(corrs)
    return scores


def ref_best(scores):
    """(dy, dx) of the highest score, and its margin over the best other shift."""
    r = scores.shape[0] // 2
    iy, ix = np.unravel_index(np.argmax(scores), scores.shape)
    others = np.delete(scores.ravel(), np.argmax(scores))
    return (int(iy) - r, int(ix) - r), float(scores.max() - others.max())


def check_darktable_scene(out, name, source_stored):
    """.npy equals the reference units at the meta offsets; every RGB patch's gradients peak at zero shift."""
    meta = json.loads((out / "meta.json").read_text())["scenes"][name]
    p = meta["patch"]
    assert meta["patches"], "no patches written"
    margins = []
    for e in meta["patches"]:
        npy = np.load(out / f"{name}_{e['k']}.npy")
        np.testing.assert_array_equal(npy, np_pack(source_stored[e["y"] : e["y"] + p, e["x"] : e["x"] + p]))
        rgb = cv2.imread(str(out / f"{name}_{e['k']}.{meta['rgb_format']}"))[..., ::-1]
        assert rgb.shape == (p, p, 3)
        shift, margin = ref_best(ref_gradient_scores(rgb, np_unpack(npy)))
        assert shift == (0, 0), (e, shift)
        margins.append(margin)
    assert min(margins) > 0.05, margins  # a clear peak, not a near tie
    return meta


def installed_version():
    out = subprocess.run(["darktable-cli", "--version"], capture_output=True, text=True).stdout
    return re.search(r"darktable-cli (\d[\w.+~-]*)", out).group(1)


@pytest.fixture(scope="module")
def synthetic_dng(tmp_path_factory):
    """A GRBG DNG of the synthetic scene (edges, a clipped block), written by the project's DNG writer."""
    cam = synthetic_camera_rgb(262, 390) / np.asarray(WB)
    plane = np.take_along_axis(cam, np.tile(RGGB_COLORS, (131, 195))[..., None], axis=-1)[..., 0]
    path = tmp_path_factory.mktemp("dng") / "synthetic_scene.dng"
    return write_dng(path, np_pack(plane).astype(np.float32), LEVELS, cfa="GRBG", wb_gains=WB)


@pytest.fixture(scope="module")
def synthetic_render(synthetic_dng):
    """(frame, darktable render) of the synthetic DNG."""
    if shutil.which("darktable-cli") is None:
        pytest.skip("darktable-cli not on PATH (Debian: apt-get install -y darktable)")
    frame = read_raw(synthetic_dng)
    return frame, render_darktable(frame)


def test_missing_darktable_cli_is_one_clear_error_and_writes_nothing(synthetic_dng, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="^darktable-cli not found: install Debian's darktable$"):
        pairs.make_pairs_from_raw(synthetic_dng, out, patch=128, isp="darktable", progress=False)
    assert not out.exists()
    with pytest.raises(FileNotFoundError, match="darktable-cli not found"):
        render_darktable(synthetic_dng)
    with pytest.raises(ValueError, match="isp: expected one of libraw, darktable, rawtherapee, infinite-isp, got 'rawpy'"):
        pairs.make_pairs_from_raw(synthetic_dng, out, isp="rawpy", progress=False)


@pytest.mark.parametrize(
    "version, workflow, adaptation",
    [
        ("4.2.1", "scene-referred", "legacy"),
        ("4.4.0", "scene-referred (filmic)", None),
        ("5.0.1+58~g4e4a3c5", "scene-referred (filmic)", None),
    ],
)
def test_darktable_conf_pins_filmic_workflow_for_each_version(version, workflow, adaptation):
    conf = darktable_conf(version)
    assert conf["plugins/darkroom/workflow"] == workflow
    assert conf.get("plugins/darkroom/chromatic-adaptation") == adaptation
    assert conf["plugins/imageio/format/png/bpp"] == "8"


@needs_darktable
def test_darktable_pairs_from_synthetic_dng_equal_raw_values_and_align(synthetic_dng, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    summary = pairs.make_pairs_from_raw(
        synthetic_dng, out, patch=128, rgb_format="png", isp="darktable", progress=False
    )
    assert list(scratch.iterdir()) == []  # the temporary DNG and darktable's config are gone
    # 262 x 386 after the GRBG crops of the writer and of make-pairs: a 2 x 3 grid of 128 px patches.
    assert summary["patches"] == 6 and summary["failed"] == []
    meta = check_darktable_scene(out, "synthetic-scene", ref_rawpy_stored(synthetic_dng))
    assert meta["canonical_shape"] == [262, 386] and meta["canonical_offset"] == [0, 1] and meta["grid"] == [2, 3]
    assert meta["isp"] == "darktable (temporary DNG of the normalised mosaic)"
    np.testing.assert_allclose(meta["wb_used"], WB, rtol=1e-5)  # read back from the DNG's rationals
    top = json.loads((out / "meta.json").read_text())
    assert top["isp"] == "darktable" and top["darktable_version"] == installed_version()
    assert top["render"]["conf"] == darktable_conf(installed_version())
    with pytest.raises(ValueError, match="holds pairs rendered by darktable"):
        pairs.make_pairs_from_raw(synthetic_dng, out, patch=128, progress=False)


@needs_darktable
def test_gradient_statistic_finds_a_deliberately_shifted_render(synthetic_render):
    frame, rgb = synthetic_render
    assert rgb.dtype == np.uint8 and rgb.shape == (262, 386, 3)
    raw = canonical_mosaic(normalise(frame), frame.cfa)
    np.testing.assert_allclose(align.gradient_alignment_scores(rgb, raw), ref_gradient_scores(rgb, raw), atol=1e-5)
    for dy, dx in SHIFTS:
        shifted = np.roll(rgb, (dy, dx), axis=(0, 1))
        assert align.best_shift(align.gradient_alignment_scores(shifted, raw)) == (dy, dx)
        assert ref_best(ref_gradient_scores(shifted, raw))[0] == (dy, dx)


@needs_darktable
def test_darktable_render_is_not_libraw_and_keeps_neutrals(synthetic_render):
    frame, rgb = synthetic_render
    x = rgb.astype(np.float64)
    block = x[12:28, 22:48].reshape(-1, 3)  # every channel at white on the sensor after white balance
    assert block.min() > 200 and np.ptp(block.mean(axis=0)) < 3  # neutral: the white balance was applied
    libraw = render_libraw(frame).astype(np.float64)
    psnr = 10 * np.log10(255.0**2 / np.mean((x - libraw) ** 2))
    assert psnr < 25, psnr  # exposure and filmic: another tone rendering, not LibRaw's


# ---- real sensor file (../shared/realdata) -------------------------------------------------------


@pytest.mark.slow
@needs_darktable
def test_darktable_pairs_from_real_canon_dng_equal_rawpy_values_and_align(realdata, tmp_path):
    path = realdata / "raw" / "canon_550d" / "colorchart.dng"
    summary = pairs.make_pairs_from_raw(path, tmp_path, isp="darktable", progress=False)
    assert summary["patches"] == 6
    meta = check_darktable_scene(tmp_path, "colorchart", ref_rawpy_stored(path))
    assert meta["grid"] == [2, 3] and meta["canonical_shape"] == [1156, 1734] and meta["wb_source"] == "file"
    rgb = cv2.imread(str(tmp_path / "colorchart_4.jpg"))[..., ::-1]
    raw = np_unpack(np.load(tmp_path / "colorchart_4.npy"))
    for dy, dx in SHIFTS:
        assert ref_best(ref_gradient_scores(np.roll(rgb, (dy, dx), axis=(0, 1)), raw))[0] == (dy, dx)
