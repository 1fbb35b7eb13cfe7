import json
import re

import cv2
import numpy as np
import pytest
import rawpy

from revisp_tf.data import pairs
from revisp_tf.data.align import render as align
from revisp_tf.data.isps.common import canonical_mosaic
from revisp_tf.data.isps.libraw import render_libraw
from revisp_tf.data.raw_files import RawReadError, normalise, read_raw
from revisp_tf.io.dng import write_dng

# Test-side references, independent of revisp_tf.isp.bayer: (row, col) of the first red sample,
# and the colour (R=0, G=1, B=2) of each site of an RGGB tile.
CFA_OFFSET = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}
RGGB_COLORS = np.array([[0, 1], [1, 2]])
LEVELS = (64, 4095)
WB = (2.0, 1.0, 1.5)


def ref_pack(plane):
    """(H, W) RGGB mosaic -> (H/2, W/2, 4): R, G (row 0), G (row 1), B."""
    return np.stack([plane[0::2, 0::2], plane[0::2, 1::2], plane[1::2, 0::2], plane[1::2, 1::2]], axis=-1)


def ref_unpack(packed):
    h, w, _ = packed.shape
    plane = np.zeros((2 * h, 2 * w), packed.dtype)
    plane[0::2, 0::2], plane[0::2, 1::2], plane[1::2, 0::2], plane[1::2, 1::2] = np.moveaxis(packed, -1, 0)
    return plane


def ref_rawpy_stored(path, black=None, white=None):
    """The sensor values as rawpy reads them, normalised to project units: round(1023 * clip((v - b) / (w - b)))."""
    with rawpy.imread(str(path)) as raw:
        v = raw.raw_image_visible.astype(np.float64)
        b = float(raw.black_level_per_channel[0]) if black is None else black
        w = float(raw.white_level) if white is None else white
    return np.round(1023.0 * np.clip((v - b) / (w - b), 0.0, 1.0)).astype(np.uint16)


def ref_best_shift(rgb_u8, raw_plane, wb, max_shift=2):
    """Linearise the sRGB, divide by the WB, re-mosaic as RGGB; the shift whose correlation with the RAW is highest."""
    x = rgb_u8.astype(np.float64) / 255.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4) / np.asarray(wb)
    h, w = raw_plane.shape
    m = 2
    colors = np.tile(RGGB_COLORS, ((h - 2 * m) // 2, (w - 2 * m) // 2))
    ref = raw_plane[m : h - m, m : w - m].astype(np.float64).ravel()
    best, best_score = None, -np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            win = lin[m + dy : h - m + dy, m + dx : w - m + dx]
            remosaic = np.take_along_axis(win, colors[..., None], axis=-1)[..., 0].ravel()
            score = np.corrcoef(ref, remosaic)[0, 1]
            if score > best_score:
                best, best_score = (dy, dx), score
    return best


def synthetic_camera_rgb(h, w, seed=0):
    """Camera RGB in [0, 1] (before white balance): textured rectangles and a clipped highlight."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 0.05)
    for _ in range(60):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        img[y : y + rng.integers(4, h // 3), x : x + rng.integers(4, w // 3)] = rng.uniform(0.02, 0.45, 3)
    img += 0.03 * rng.random((h, w, 3))
    img[10:30, 20:50] = 1.0  # saturated on the sensor: every channel at white
    return np.clip(img, 0.0, 1.0)


def check_scene(out, name, source_stored, wb):
    """Every written pair: .npy equals the reference units at the meta offsets; the RGB aligns at zero shift."""
    meta = json.loads((out / "meta.json").read_text())["scenes"][name]
    p = meta["patch"]
    assert meta["patches"], "no patches written"
    for e in meta["patches"]:
        npy = np.load(out / f"{name}_{e['k']}.npy")
        assert npy.dtype == np.uint16 and npy.shape == (p // 2, p // 2, 4)
        np.testing.assert_array_equal(npy, ref_pack(source_stored[e["y"] : e["y"] + p, e["x"] : e["x"] + p]))
        rgb = cv2.imread(str(out / f"{name}_{e['k']}.jpg"))[..., ::-1]
        assert rgb.shape == (p, p, 3)
        assert ref_best_shift(rgb, ref_unpack(npy), wb) == (0, 0), e
    return meta


@pytest.fixture(scope="module")
def synthetic_dng(tmp_path_factory):
    """A GRBG DNG of the synthetic scene, written by the project's DNG writer."""
    cam = synthetic_camera_rgb(262, 390) / np.asarray(WB)
    packed_rggb = ref_pack(np.take_along_axis(cam, np.tile(RGGB_COLORS, (131, 195))[..., None], axis=-1)[..., 0])
    path = tmp_path_factory.mktemp("dng") / "synthetic_scene.dng"
    return write_dng(path, packed_rggb.astype(np.float32), LEVELS, cfa="GRBG", wb_gains=WB)


def test_pairs_from_synthetic_dng_equal_rawpy_values_and_align(synthetic_dng, tmp_path):
    summary = pairs.make_pairs_from_raw([synthetic_dng], tmp_path, patch=128, progress=False)
    # 262 x 386 after the GRBG crops of the writer and of make-pairs: a 2 x 3 grid of 128 px patches.
    assert summary["patches"] == 6 and summary["failed"] == []
    meta = check_scene(tmp_path, "synthetic-scene", ref_rawpy_stored(synthetic_dng), WB)
    assert meta["sensor"]["cfa"] == "GRBG" and meta["canonical_offset"] == [0, 1] and meta["grid"] == [2, 3]
    assert [(e["y"], e["x"]) for e in meta["patches"]] == [(y, x + 1) for y in (0, 128) for x in (0, 128, 256)]
    assert meta["patches"][0]["overexposed"] > 0.02  # the saturated block renders white
    top = json.loads((tmp_path / "meta.json").read_text())
    assert top["libraw_version"] == ".".join(map(str, rawpy.libraw_version))
    assert top["render"]["no_auto_bright"] is True and top["render"]["highlight_mode"] == "clip"


def test_pairs_from_headerless_file_rendered_through_a_temporary_dng(tmp_path):
    cam = synthetic_camera_rgb(200, 260, seed=1) / np.asarray(WB)
    dy, dx = CFA_OFFSET["GBRG"]
    sites = np.roll(np.tile(RGGB_COLORS, (100, 130)), (-dy, -dx), axis=(0, 1))  # GBRG: red at (1, 0)
    stored = np.round(LEVELS[0] + np.take_along_axis(cam, sites[..., None], axis=-1)[..., 0] * (LEVELS[1] - LEVELS[0]))
    path = tmp_path / "in" / "low_light.raw16"
    path.parent.mkdir()
    stored.astype("<u2").tofile(path)
    kw = dict(shape=(200, 260), dtype="uint16", cfa="GBRG", black=LEVELS[0], white=LEVELS[1], wb=WB)
    out = tmp_path / "out"
    summary = pairs.make_pairs_from_raw(path, out, patch=96, progress=False, **kw)
    assert summary["patches"] == 4
    ref = np.round(1023.0 * np.clip((stored - LEVELS[0]) / (LEVELS[1] - LEVELS[0]), 0, 1)).astype(np.uint16)
    meta = check_scene(out, "low-light", ref, WB)
    assert meta["isp"].startswith("libraw (temporary DNG") and meta["canonical_offset"] == [1, 0]


def test_temporary_dng_render_applies_white_balance_and_colour_matrix(tmp_path):
    cam_to_srgb = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]])
    cam = np.array([0.1, 0.3, 0.2])
    plane = np.take_along_axis(np.broadcast_to(cam, (64, 64, 3)), np.tile(RGGB_COLORS, (32, 32))[..., None], axis=-1)[
        ..., 0
    ]
    path = tmp_path / "flat.raw"
    np.round(50 + plane * 1000).astype("<u2").tofile(path)
    frame = read_raw(
        path, shape=(64, 64), dtype="uint16", cfa="RGGB", black=50, white=1050, wb=WB, color_matrix=cam_to_srgb
    )
    rgb = render_libraw(frame)
    x = rgb[16:48, 16:48].reshape(-1, 3).astype(np.float64) / 255.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).mean(axis=0)
    np.testing.assert_allclose(lin, cam_to_srgb @ (np.asarray(WB) * cam), atol=0.004)  # 8-bit steps near 0.3 are ~0.003


def test_library_alignment_scores_agree_with_the_reference(synthetic_dng):
    frame = read_raw(synthetic_dng)
    rgb = render_libraw(frame)
    raw = canonical_mosaic(normalise(frame), frame.cfa)
    for dy, dx in [(0, 0), (0, 1), (1, 0), (2, 2)]:  # a shifted pair must be found out
        shifted = np.roll(rgb, (dy, dx), axis=(0, 1))
        assert align.best_shift(align.alignment_scores(shifted, raw, WB)) == (dy, dx)
        assert ref_best_shift(shifted, raw, WB) == (dy, dx)


def test_rerun_replaces_a_scene_and_removes_its_stale_patches(synthetic_dng, tmp_path):
    pairs.make_pairs_from_raw(synthetic_dng, tmp_path, patch=64, progress=False)
    assert len(list(tmp_path.glob("synthetic-scene_*.npy"))) == 4 * 6
    pairs.make_pairs_from_raw(synthetic_dng, tmp_path, patch=128, rgb_format="png", progress=False)
    assert sorted(p.name for p in tmp_path.glob("synthetic-scene_*")) == sorted(
        f"synthetic-scene_{k}.{s}" for k in range(6) for s in ("png", "npy")
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / synthetic_dng.name).write_bytes(synthetic_dng.read_bytes())
    summary = pairs.make_pairs_from_raw(other / synthetic_dng.name, tmp_path, patch=128, progress=False)
    assert summary["scenes"][0]["scene"] == "synthetic-scene-2"  # same stem, another source: a new scene


def test_image_smaller_than_a_patch_is_skipped_with_a_reason(synthetic_dng, tmp_path):
    summary = pairs.make_pairs_from_raw(synthetic_dng, tmp_path, patch=504, progress=False)
    assert summary["patches"] == 0
    assert summary["scenes"][0]["skipped"] == "262x386 after CFA alignment is smaller than one 504x504 patch"
    assert not list(tmp_path.glob("*_*"))


def _bad_file(tmp_path, case):
    if case == "unreadable":
        path = tmp_path / "corrupt.dng"
        path.write_bytes(b"II*\x00" + bytes(100))
        return path, {}
    arr = np.full((40, 40), 300.0, "<f4")
    arr[5, 7] = {"nan": np.nan, "inf": np.inf, "above_white": 5000.0}[case]
    path = tmp_path / f"{case}.raw"
    arr.tofile(path)
    return path, dict(shape=(40, 40), dtype="float32", cfa="RGGB", black=0, white=1023)


@pytest.mark.parametrize(
    "case, expect",
    [
        ("unreadable", "LibRaw cannot read it"),
        ("nan", "non-finite"),
        ("inf", "non-finite"),
        ("above_white", "above white level"),
    ],
)
def test_bad_single_file_fails_with_one_error_naming_it_and_writes_nothing(tmp_path, case, expect):
    path, kw = _bad_file(tmp_path, case)
    out = tmp_path / "out"
    with pytest.raises(RawReadError, match=re.escape(str(path)) + ".*" + expect):
        pairs.make_pairs_from_raw(path, out, patch=16, progress=False, **kw)
    assert not out.exists()  # not even the folder


def test_skip_bad_continues_past_a_bad_file(synthetic_dng, tmp_path):
    bad, _ = _bad_file(tmp_path, "unreadable")
    summary = pairs.make_pairs_from_raw(
        [bad, synthetic_dng], tmp_path / "out", patch=128, skip_bad=True, progress=False
    )
    assert summary["patches"] == 6
    assert [f["source"] for f in summary["failed"]] == [str(bad)] and str(bad) in summary["failed"][0]["error"]


@pytest.mark.parametrize("kw", [dict(patch=505), dict(patch=128, stride=0), dict(patch=128, rgb_format="tiff")])
def test_bad_arguments(synthetic_dng, tmp_path, kw):
    with pytest.raises(ValueError, match="patch|stride|rgb_format"):
        pairs.make_pairs_from_raw(synthetic_dng, tmp_path, progress=False, **kw)


# ---- real sensor files (../shared/realdata) -------------------------------------------------------


@pytest.mark.parametrize(
    "rel, levels, grid",
    [("canon_550d/colorchart.dng", {}, [2, 3]), ("huawei_p9/RAW_00242.dng", {"black": 0, "white": 1023}, [2, 3])],
)
def test_pairs_from_real_dng_equal_rawpy_values_and_align(realdata, tmp_path, rel, levels, grid):
    path = realdata / "raw" / rel
    summary = pairs.make_pairs_from_raw(path, tmp_path, progress=False, **levels)
    name = summary["scenes"][0]["scene"]
    wb = read_raw(path, **levels).wb
    meta = check_scene(tmp_path, name, ref_rawpy_stored(path, levels.get("black"), levels.get("white")), wb)
    assert meta["grid"] == grid and summary["patches"] == grid[0] * grid[1]
    assert meta["sensor"]["cfa"] == "RGGB" and meta["wb_source"] == "file"


def test_every_isp_class_satisfies_the_isp_interface():
    import inspect

    from revisp_tf.data.isps import Isp
    from revisp_tf.data.isps.darktable import Darktable
    from revisp_tf.data.isps.libraw import LibRaw
    from revisp_tf.data.isps.rawtherapee import RawTherapee

    wanted = {n for n, v in vars(Isp).items() if inspect.isfunction(v) and not n.startswith("_")} | set(Isp.__annotations__)
    assert wanted == {"name", "jpeg_quality", "render", "settings", "describe"}
    for cls in (LibRaw, Darktable, RawTherapee):
        missing = {n for n in wanted if not hasattr(cls, n) and n not in getattr(cls, "__annotations__", {})}
        assert not missing, (cls.__name__, missing)
