"""Dataset scans: layouts, validation of every bad-input case, skip reports, split by scene."""

import logging
import re

import cv2
import numpy as np
import pytest
from data_gen import TEST16, np_mosaic, np_unpack, write_rgb16

from revisp_tf.data.scan import BadFile, DataError, Example, raw_files, scan_pairs, scan_rgb, split_by_scene
from revisp_tf.isp.sensor import HUAWEI_P20, SAMSUNG_S7

SIZE = (16, 24)  # s7_like RGB size; its RAW is (8, 12, 4)


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _save(name, arr):
    return lambda root: np.save(root / name, arr)


def _rename(root):
    for ext in ("jpg", "npy"):
        (root / f"5_1.{ext}").rename(root / f"five.{ext}")


RAW = "5_1.npy"
GT = "5_1.demosaic.npy"
F32 = np.float32
# Each case breaks example 5_1 of an s7_like folder: (breaker, file the error must name, regex for the reason).
BREAKERS = {
    "truncated jpeg": (lambda r: _truncate(r / "5_1.jpg"), "5_1.jpg", "truncated"),
    "raw wrong shape": (_save(RAW, np.zeros((8, 11, 4), np.uint16)), RAW, r"expected \(8, 12, 4\)"),
    "raw wrong dtype": (_save(RAW, np.zeros((8, 12, 4), np.int32)), RAW, "dtype int32; expected one of uint16"),
    "raw nan": (_save(RAW, np.full((8, 12, 4), np.nan, F32)), RAW, "non-finite"),
    "raw inf": (_save(RAW, np.full((8, 12, 4), np.inf, F32)), RAW, "non-finite"),
    "raw above white": (_save(RAW, np.full((8, 12, 4), 1024, np.uint16)), RAW, r"within \[0, 1023\]"),
    "raw negative": (_save(RAW, np.full((8, 12, 4), -1.0, F32)), RAW, r"within \[0, 1023\]"),
    "raw truncated": (lambda r: _truncate(r / RAW), RAW, "truncated"),
    "raw fortran order": (_save(RAW, np.asfortranarray(np.zeros((8, 12, 4), np.uint16))), RAW, "C-ordered"),
    "jpeg without raw": (lambda r: (r / RAW).unlink(), "5_1.jpg", "without its RAW partner"),
    "raw without jpeg": (lambda r: (r / "5_1.jpg").unlink(), RAW, "without its RGB partner"),
    "odd-sized rgb": (
        lambda r: cv2.imwrite(str(r / "5_1.jpg"), np.zeros((15, 24, 3), np.uint8)),
        "5_1.jpg",
        "even height and width",
    ),
    "not an image": (lambda r: (r / "5_1.jpg").write_bytes(b"hello"), "5_1.jpg", "not a JPEG or PNG"),
    "demosaiced wrong shape": (
        _save(GT, np.zeros((8, 12, 3), np.float16)),
        GT,
        r"expected a float array of shape \(16, 24, 3\)",
    ),
    "demosaiced nan": (_save(GT, np.full((16, 24, 3), np.nan, np.float16)), GT, "not finite"),
    "name not scene_k": (_rename, "five.jpg", r"not \{scene\}_\{k\}"),
}


@pytest.mark.parametrize("case", BREAKERS)
def test_bad_file_stops_the_scan_naming_the_file(s7_like, case):
    root = s7_like()
    breaker, name, reason = BREAKERS[case]
    breaker(root)
    with pytest.raises(DataError, match=rf"{root / name}: .*{reason}"):
        scan_pairs(root, sensor=SAMSUNG_S7)


@pytest.mark.parametrize("case", ["truncated jpeg", "raw above white", "jpeg without raw", "raw nan"])
def test_skip_bad_reports_and_logs_the_skipped_file(s7_like, case, caplog):
    root = s7_like()
    breaker, name, reason = BREAKERS[case]
    breaker(root)
    with caplog.at_level(logging.WARNING):
        result = scan_pairs(root, sensor=SAMSUNG_S7, skip_bad=True)
    assert [e.rgb.name for e in result] == ["5_0.jpg", "7_0.jpg"]
    (bad,) = result.skipped
    assert isinstance(bad, BadFile) and bad.path == root / name
    assert re.search(reason, bad.reason)
    assert str(root / name) in caplog.text and "skipped 1 bad files, kept 2" in caplog.text


def test_aim22_scan_pairs_files_scenes_sizes_and_demosaiced(consistent_aim22):
    root = consistent_aim22(scenes=("2", "10"), patches=11, size=(12, 16))
    (root / "10_3.demosaic.npy").unlink()
    (root / "meta.json").write_text("{}")  # other files are not examples
    (root / ".10_4.demosaic.abcd.tmp.npy").write_bytes(b"partial")  # hidden temporaries are ignored
    ex = scan_pairs(root, sensor=TEST16)
    assert [e.rgb.name for e in ex[:4]] == ["2_0.png", "2_1.png", "2_2.png", "2_3.png"]  # natural order
    assert [e.rgb.stem for e in ex[9:13]] == ["2_9", "2_10", "10_0", "10_1"]
    assert all(e.scene == e.rgb.stem.split("_")[0] and e.size == (12, 16) for e in ex)
    assert all(e.raw == e.rgb.with_suffix(".npy") for e in ex)
    assert [e.rgb.stem for e in ex if e.demosaiced is None] == ["10_3"]
    assert ex[0].demosaiced == root / "2_0.demosaic.npy"
    assert raw_files(root) == [e.raw for e in ex]
    assert ex.skipped == []


def test_folder_layout_nested_scenes_and_png_mosaic(tmp_path):
    rng = np.random.default_rng(0)
    for rel in ("beach/a", "beach/b", "city/a", "single"):
        for sub in ("rgb", "raw"):
            (tmp_path / sub / rel).parent.mkdir(parents=True, exist_ok=True)
        rgb16 = rng.integers(0, 65536, (8, 10, 3), dtype=np.uint16)
        write_rgb16(tmp_path / "rgb" / f"{rel}.png", rgb16)
        if rel == "single":
            assert cv2.imwrite(str(tmp_path / "raw" / f"{rel}.png"), np_unpack(np_mosaic(rgb16)))
        else:
            np.save(tmp_path / "raw" / f"{rel}.npy", np_mosaic(rgb16))
    ex = scan_pairs(tmp_path, layout="folder", sensor=TEST16)
    assert [(e.rgb.relative_to(tmp_path).as_posix(), e.scene) for e in ex] == [
        ("rgb/beach/a.png", "beach"),
        ("rgb/beach/b.png", "beach"),
        ("rgb/city/a.png", "city"),
        ("rgb/single.png", "single"),
    ]
    assert ex[3].raw.suffix == ".png"


def test_png_raw_must_be_16_bit_and_match_the_rgb(tmp_path):
    for sub in ("rgb", "raw"):
        (tmp_path / sub).mkdir()
    assert cv2.imwrite(str(tmp_path / "rgb" / "x.png"), np.zeros((8, 10, 3), np.uint8))
    assert cv2.imwrite(str(tmp_path / "raw" / "x.png"), np.zeros((8, 10), np.uint8))
    with pytest.raises(DataError, match=r"raw/x\.png: PNG of uint8 .*expected a 16-bit single-plane mosaic"):
        scan_pairs(tmp_path, layout="folder", sensor=TEST16)
    assert cv2.imwrite(str(tmp_path / "raw" / "x.png"), np.zeros((8, 12), np.uint16))
    with pytest.raises(DataError, match=r"raw/x\.png: mosaic shape \(8, 12\); expected \(8, 10\)"):
        scan_pairs(tmp_path, layout="folder", sensor=TEST16)


def test_scan_errors_for_missing_or_empty_folders(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        scan_pairs(tmp_path / "nope", sensor=SAMSUNG_S7)
    with pytest.raises(DataError, match=r"no valid examples; expected RGB \+ RAW pairs"):
        scan_pairs(tmp_path, sensor=SAMSUNG_S7)
    with pytest.raises(DataError, match="no rgb/ folder"):
        scan_pairs(tmp_path, layout="folder", sensor=SAMSUNG_S7)
    with pytest.raises(ValueError, match="unknown layout"):
        scan_pairs(tmp_path, layout="zurich", sensor=SAMSUNG_S7)


def test_p20_accepts_stored_values_up_to_1023(s7_like):
    """Track 2 files are 10-bit: values above the sensor's white level 1020 are still valid stored values."""
    root = s7_like()
    np.save(root / RAW, np.full((8, 12, 4), 1023, np.uint16))
    assert len(scan_pairs(root, sensor=HUAWEI_P20)) == 3
    np.save(root / RAW, np.full((8, 12, 4), 1024, np.uint16))
    with pytest.raises(DataError, match=r"5_1.npy: RAW values span \[1024, 1024\]; expected stored values within \[0, 1023\]"):
        scan_pairs(root, sensor=HUAWEI_P20)


def test_scan_rgb_generated(s7_like):
    root = s7_like()
    (root / "5_0.npy").unlink()  # RAW files are not needed (and .npy files are not RGB)
    ex = scan_rgb(root)
    assert [(e.rgb.name, e.scene, e.size, e.raw) for e in ex] == [
        ("5_0.jpg", "5", SIZE, None),
        ("5_1.jpg", "5", SIZE, None),
        ("7_0.jpg", "7", SIZE, None),
    ]
    _truncate(root / "7_0.jpg")
    with pytest.raises(DataError, match=r"7_0\.jpg: JPEG is truncated"):
        scan_rgb(root)
    assert [b.path.name for b in scan_rgb(root, skip_bad=True).skipped] == ["7_0.jpg"]


def test_scan_rgb_real_s7_folder(realdata):
    ex = scan_rgb(realdata / "aim22_s7_rgb")
    assert len(ex) == 192 and ex.skipped == []
    assert {e.scene for e in ex} == {"6", "10", "48", "78"}
    assert all(e.size == (504, 504) for e in ex)
    assert [e.rgb.name for e in ex[:3]] == ["6_0.jpg", "6_1.jpg", "6_2.jpg"]


def _examples(scenes, per_scene=3):
    return [Example(f"{s}_{k}.jpg", str(s), (8, 8)) for s in scenes for k in range(per_scene)]


def test_split_by_scene_is_deterministic_and_never_shares_a_scene():
    ex = _examples(range(20))
    train, val = split_by_scene(ex, 0.2, seed=3)
    assert (train, val) == split_by_scene(ex, 0.2, seed=3)
    assert split_by_scene(ex, 0.2, seed=4)[1] != val
    val_scenes = {e.scene for e in val}
    assert len(val_scenes) == 4 and not val_scenes & {e.scene for e in train}
    assert len(val) == 12 and sorted(train + val, key=ex.index) == ex  # whole scenes, nothing lost, order kept
    assert split_by_scene(ex, 0.0)[1] == []
    assert len({e.scene for e in split_by_scene(_examples(range(3)), 0.01)[1]}) == 1  # at least one val scene
    with pytest.raises(ValueError, match="keep a training scene"):
        split_by_scene(_examples(range(1)), 0.5)
