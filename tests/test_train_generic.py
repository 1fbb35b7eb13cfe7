"""scripts/train_generic.py and benchmark_generic.py: the data list's licences, the linked training
folder (scenes renamed, positions and recorded gains kept) and the leave-one-camera-out table."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name):
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.fixture(scope="module")
def tg():
    return _load("train_generic")


@pytest.fixture(scope="module")
def bg():
    return _load("benchmark_generic")


def test_only_permissively_licensed_cameras_train_and_every_frame_is_known(tg):
    assert tg.TRAINING_CAMERAS == ("infinite-isp", "canon-550d", "nokia-n900")
    assert not tg.CAMERAS["huawei-p9"].shippable
    frames = [f for c in tg.CAMERAS.values() for f in c.frames]
    assert len(set(frames)) == len(frames) and set(frames) <= set(tg.bf.FRAMES)
    assert set(tg.TRAIN_ISPS) <= set(tg.bf.ISPS)


def test_linked_folder_renames_scenes_and_keeps_positions_and_gains(tg, tmp_path):
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.data.synthetic import make_synthetic_pairs
    from revisp_tf.global_stage.placement import placements
    from revisp_tf.io.images import read_rgb
    from revisp_tf.io.metadata import patch_captures
    from revisp_tf.isp.sensor import PROJECT_10BIT

    a, b = tmp_path / "a", tmp_path / "b"
    make_synthetic_pairs(a, count=4, seed=1, patch=32)
    make_synthetic_pairs(b, count=3, seed=2, patch=32)
    # A make-pairs-like frame: one scene with 2 placed patches and a scene-level capture.
    meta = json.loads((b / "meta.json").read_text())
    meta["scenes"]["0"] |= {"canonical_offset": [0, 0], "canonical_shape": [32, 64], "capture": {"wb": [2.0, 1.0, 1.5], "source": "x"}}
    meta["scenes"]["0"]["patches"] = [{"k": 0, "y": 0, "x": 0}, {"k": 1, "y": 0, "x": 32}]
    (b / "0_1.jpg").write_bytes((a / "0_0.jpg").read_bytes())
    (b / "0_1.npy").write_bytes((a / "0_0.npy").read_bytes())
    (b / "meta.json").write_text(json.dumps(meta))
    out = tg.linked_folder({"syn": a, "frame": b}, tmp_path / "linked")
    linked = scan_pairs(out, sensor=PROJECT_10BIT)
    sources = list(scan_pairs(a, sensor=PROJECT_10BIT)) + list(scan_pairs(b, sensor=PROJECT_10BIT))
    key = lambda ex: Path(ex.rgb).name.split("-", 1)[-1]  # noqa: E731
    assert sorted(Path(ex.rgb).name for ex in linked) == sorted(
        [f"syn-{Path(ex.rgb).name}" for ex in sources[:4]] + [f"frame-{Path(ex.rgb).name}" for ex in sources[4:]])
    by_name = {Path(ex.rgb).name: ex for ex in sources[:4]}
    for ex in linked:
        if ex.rgb.name.startswith("syn-"):
            np.testing.assert_array_equal(read_rgb(ex.rgb), read_rgb(by_name[key(ex)].rgb))
    want = {f"syn-{Path(ex.rgb).name}": c for ex, c in zip(sources[:4], patch_captures([ex.rgb for ex in sources[:4]]))}
    want |= {f"frame-{Path(ex.rgb).name}": c for ex, c in zip(sources[4:], patch_captures([ex.rgb for ex in sources[4:]]))}
    got = dict(zip((Path(ex.rgb).name for ex in linked), patch_captures([ex.rgb for ex in linked])))
    assert got == want and got["frame-0_1.jpg"].wb == (2.0, 1.0, 1.5) and got["syn-0_0.jpg"].source == "synthetic camera"
    places = {Path(ex.rgb).name: p for ex, p in zip(linked, placements(linked))}
    assert (places["frame-0_1.jpg"].frame, places["frame-0_1.jpg"].x) == (places["frame-0_0.jpg"].frame, 32)
    assert places["frame-0_0.jpg"].frame_shape == (32, 64)


def test_loco_table_means_over_frames_then_cameras(bg):
    methods = {m: 0.0 for m in bg.METHODS}
    frame = lambda upi, gen: methods | {"upi": upi, "generic": gen, "generic per seed": [gen - 1, gen + 1]}  # noqa: E731
    report = {"held_out": {"huawei-p9": {"libraw": {"P9-19": frame(30.0, 34.0), "P9-242": frame(20.0, 28.0)}},
                           "canon-550d": {"libraw": {"550D": frame(40.0, 41.0)}}}}
    means = bg.camera_means(report)
    assert means["libraw"]["huawei-p9"]["upi"] == 25.0 and means["libraw"]["huawei-p9"]["generic"] == 31.0
    rows = bg.markdown(report).splitlines()
    col = ["held-out camera (frames)", *bg.METHODS].index
    cells = lambda row: [c.strip() for c in row.strip("|").split("|")]  # noqa: E731
    p9, canon, mean = (cells(r) for r in rows if r.startswith(("| huawei-p9", "| canon-550d", "| **mean")))
    assert p9[0] == "huawei-p9 (2)" and p9[col("generic")] == "31.00 ±1.00" and p9[col("upi")] == "25.00"
    assert float(mean[col("upi")]) == 32.5 and float(mean[col("generic")]) == 36.0 and float(canon[col("upi")]) == 40.0
    assert means["libraw"]["huawei-p9"]["generic per seed"] == [30.0, 32.0]
