"""prepare_gt: exact outputs, idempotent, atomic under interruption, bad RAW files reported."""

import cv2
import numpy as np
import pytest
from data_gen import np_pack

from revisp_tf.data import pipeline
from revisp_tf.data.prepare_gt import prepare_gt
from revisp_tf.data.scan import DataError, scan_pairs
from revisp_tf.isp.sensor import SAMSUNG_S7

NAMES = ("5_0", "5_1", "7_0", "7_1", "7_2")


def np_nearest_demosaic(packed):
    """Stand-in demosaic for tests: each 2x2 tile gets (R, mean G, B) of its packed sample, float64."""
    rgb = np.stack([packed[..., 0], (packed[..., 1] + packed[..., 2]) / 2, packed[..., 3]], axis=-1)
    return rgb.repeat(2, axis=-3).repeat(2, axis=-2) * 1.2  # the gain pushes bright values above 1


class Counting:
    """A demosaic function that records its calls and can fail on a given call."""

    def __init__(self, fail_on_call=None):
        self.calls, self.fail_on_call = [], fail_on_call

    def __call__(self, packed):
        self.calls.append(packed.shape)
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("interrupted")
        return np_nearest_demosaic(packed.astype(np.float64))


def all_files(root):
    return sorted(p.name for p in root.iterdir())


def test_writes_float16_clipped_demosaic_beside_each_raw(s7_like):
    root = s7_like(NAMES)
    fn = Counting()
    report = prepare_gt(root, SAMSUNG_S7, batch_size=2, demosaic_fn=fn, progress=False)
    assert (report.written, report.already_done, report.skipped) == (5, 0, [])
    assert fn.calls == [(2, 8, 12, 4), (2, 8, 12, 4), (1, 8, 12, 4)]
    for name in NAMES:
        got = np.load(root / f"{name}.demosaic.npy")
        packed = np.load(root / f"{name}.npy").astype(np.float32) / np.float32(1024)  # S7 model units
        want = np.clip(np_nearest_demosaic(packed.astype(np.float64)), 0, 1).astype(np.float16)
        assert got.dtype == np.float16 and got.shape == (16, 24, 3)
        np.testing.assert_array_equal(got, want)
    assert all(e.demosaiced is not None for e in scan_pairs(root, sensor=SAMSUNG_S7))


def test_rerun_skips_done_files_and_overwrite_redoes_them(s7_like):
    root = s7_like(NAMES)
    prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), progress=False)
    stamp = (root / "5_0.demosaic.npy").stat().st_mtime_ns
    fn = Counting()
    report = prepare_gt(root, SAMSUNG_S7, demosaic_fn=fn, progress=False)
    assert (report.written, report.already_done, fn.calls) == (0, 5, [])
    assert (root / "5_0.demosaic.npy").stat().st_mtime_ns == stamp
    report = prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), overwrite=True, progress=False)
    assert (report.written, report.already_done) == (5, 0)


def test_interruption_leaves_no_partial_file_and_rerun_completes(s7_like):
    root = s7_like(NAMES)
    before = set(all_files(root))
    with pytest.raises(RuntimeError, match="interrupted"):
        prepare_gt(root, SAMSUNG_S7, batch_size=2, demosaic_fn=Counting(fail_on_call=2), progress=False)
    assert set(all_files(root)) - before == {"5_0.demosaic.npy", "5_1.demosaic.npy"}  # no temporaries either
    fn = Counting()
    report = prepare_gt(root, SAMSUNG_S7, batch_size=2, demosaic_fn=fn, progress=False)
    assert (report.written, report.already_done) == (3, 2)
    assert fn.calls == [(2, 8, 12, 4), (1, 8, 12, 4)]


def test_a_failing_write_leaves_no_file(s7_like, monkeypatch):
    root = s7_like(NAMES[:1])
    before = all_files(root)

    def broken_save(f, arr, allow_pickle=False):
        f.write(b"\x93NUMPY half a header")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), progress=False)
    assert all_files(root) == before


def test_bad_raw_stops_or_is_reported(s7_like):
    root = s7_like(NAMES)
    np.save(root / "7_0.npy", np.full((8, 12, 4), 2000, np.uint16))
    with pytest.raises(DataError, match=r"7_0\.npy: RAW values span \[2000, 2000\]; expected .* within \[0, 1023\]"):
        prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), progress=False)
    report = prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), skip_bad=True, progress=False)
    assert report.written == 4 and [(b.path.name, b.reason[:10]) for b in report.skipped] == [("7_0.npy", "RAW values")]
    assert not (root / "7_0.demosaic.npy").exists()


def test_folder_layout_png_mosaics_of_two_sizes(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("rgb", "raw"):
        (tmp_path / sub).mkdir()
    shapes = {"a": (8, 12), "b": (10, 6), "c": (8, 12)}
    for name, (h, w) in shapes.items():
        assert cv2.imwrite(str(tmp_path / "rgb" / f"{name}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        assert cv2.imwrite(str(tmp_path / "raw" / f"{name}.png"), rng.integers(0, 1024, (h, w), dtype=np.uint16))
    fn = Counting()
    prepare_gt(tmp_path, SAMSUNG_S7, layout="folder", batch_size=4, demosaic_fn=fn, progress=False)
    assert sorted(fn.calls) == [(1, 5, 3, 4), (2, 4, 6, 4)]  # batches group equal shapes
    mosaic = cv2.imread(str(tmp_path / "raw" / "b.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / np.float32(1024)
    want = np.clip(np_nearest_demosaic(np_pack(mosaic).astype(np.float64)), 0, 1)
    np.testing.assert_array_equal(np.load(tmp_path / "raw" / "b.demosaic.npy"), want.astype(np.float16))
    ex = scan_pairs(tmp_path, layout="folder", sensor=SAMSUNG_S7)
    (batch,) = pipeline.make_dataset(ex[:1], batch_size=1, training=False, sensor=SAMSUNG_S7)
    want_a = np.load(tmp_path / "raw" / "a.demosaic.npy").astype(np.float32)
    np.testing.assert_array_equal(batch["demosaiced"][0], want_a)


def test_default_is_the_pretrained_demosaic_net(s7_like):
    from revisp_tf.models.demosaicnet import demosaic

    root = s7_like(NAMES[:2], size=(16, 16))
    prepare_gt(root, SAMSUNG_S7, progress=False)
    packed = np.stack([np.load(root / f"{n}.npy").astype(np.float32) / np.float32(1024) for n in NAMES[:2]])
    want = np.clip(demosaic(packed).numpy(), 0, 1)
    got = np.stack([np.load(root / f"{n}.demosaic.npy") for n in NAMES[:2]])
    np.testing.assert_allclose(got.astype(np.float32), want, atol=2**-11)  # float16 rounding
    assert np.ptp(want) > 0.1  # a real image, not a constant


def test_nothing_to_do_shows_no_progress_bar(s7_like, capsys):
    """`demo` printed "prepare-gt: 0file [00:00, ?file/s]" for a folder with nothing left to do."""
    root = s7_like(NAMES)
    prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), progress=False)
    capsys.readouterr()
    prepare_gt(root, SAMSUNG_S7, demosaic_fn=Counting(), progress=True)
    assert "prepare-gt" not in capsys.readouterr().err
