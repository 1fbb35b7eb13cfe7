"""tf.data pipeline: every map function eagerly and inside Dataset.map, augmentations exactly against NumPy."""

import itertools

import cv2
import numpy as np
import pytest
import tensorflow as tf
from data_gen import TEST16, np_mosaic, np_pack, np_unpack, read_rgb_ref, write_rgb16

from revisp_tf.data import pipeline
from revisp_tf.data.scan import DataError, scan_pairs, scan_rgb
from revisp_tf.isp.sensor import HUAWEI_P20, SAMSUNG_S7, SensorSpec

LABELS = np.tile(np.array([["R", "G"], ["G", "B"]]), (3, 3))  # a 6x6 RGGB mosaic, by colour name


def np_dihedral(x, op):
    """Reference op numbering: flip left-right if op >= 4, then op % 4 counter-clockwise quarter turns."""
    return np.rot90(np.fliplr(x) if op >= 4 else x, op % 4)


def np_phase(op):
    """(dy, dx) where the transformed 6x6 RGGB mosaic reads R at the origin and B diagonally (so G, G between)."""
    t = np_dihedral(LABELS, op)
    (hit,) = [(dy, dx) for dy in (0, 1) for dx in (0, 1) if t[dy, dx] == "R" and t[dy + 1, dx + 1] == "B"]
    return hit


def np_apply(rgb, raw, dem, y0, x0, op, crop, margin):
    """NumPy reference of pipeline.apply_params: window, transform all planes alike, re-crop at the RGGB phase."""
    planes = np.concatenate([rgb, np_unpack(raw)[..., None], dem], axis=-1)
    t = np_dihedral(planes[y0 : y0 + crop + margin, x0 : x0 + crop + margin], op)
    dy, dx = np_phase(op)
    out = t[dy : dy + crop, dx : dx + crop]
    return out[..., :3], np_pack(out[..., 3]), out[..., 4:]


def features(seed=0, size=(14, 18)):
    rng = np.random.default_rng(seed)
    rgb = rng.random((*size, 3), dtype=np.float32)
    return {
        "rgb": rgb,
        "raw": rng.random((size[0] // 2, size[1] // 2, 4), dtype=np.float32),
        "demosaiced": rng.random((*size, 3), dtype=np.float32),
    }


def eager_and_mapped(fn, *args):
    """fn run eagerly, and fn run inside Dataset.map on the same single element."""
    eager = fn(*[tf.nest.map_structure(tf.constant, a) for a in args])
    (mapped,) = list(tf.data.Dataset.from_tensors(tuple(args)).map(fn).as_numpy_iterator())
    return tf.nest.map_structure(lambda t: t.numpy(), eager), mapped


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_phase_table_restores_rggb_for_every_op():
    for op in range(pipeline.N_OPS):
        assert pipeline.PHASE[op] == np_phase(op), op
        dy, dx = pipeline.PHASE[op]
        assert (np_dihedral(LABELS, op)[dy : dy + 4, dx : dx + 4] == LABELS[:4, :4]).all()
    assert pipeline.augment_ops("transpose") == (0, 5)  # identity and transpose need no margin
    assert pipeline.augment_ops(True) == tuple(range(8)) and pipeline.augment_ops(False) == (0,)


@pytest.mark.parametrize("op", range(8))
def test_apply_params_matches_numpy_exactly_eager_and_in_map(op):
    f = features(op)
    crop, ops = 10, tuple(range(8))
    fn = lambda feats: pipeline.apply_params(feats, 2, 4, tf.constant(op), crop, ops)  # noqa: E731
    eager, mapped = eager_and_mapped(fn, f)
    rgb, raw, dem = np_apply(f["rgb"], f["raw"], f["demosaiced"], 2, 4, op, crop, margin=2)
    assert_same(eager, mapped)
    assert_same(eager, {"rgb": rgb, "raw": raw, "demosaiced": dem})


def test_augmenter_eager_equals_map_and_numpy_with_its_sampled_params():
    f = features(1, size=(22, 30))
    crop = 12
    fn = pipeline.make_augmenter(crop, "dihedral", seed=7)
    mapped = list(tf.data.Dataset.range(12).map(lambda i: fn(i, f)).as_numpy_iterator())
    seen_ops = set()
    for index in range(12):
        eager = {k: v.numpy() for k, v in fn(tf.constant(index, tf.int64), f).items()}
        assert_same(eager, mapped[index])
        y0, x0, op = (int(v) for v in pipeline.sample_params(7, index, (22, 30), crop, tuple(range(8))))
        assert y0 % 2 == 0 and x0 % 2 == 0 and 0 <= y0 <= 22 - crop - 2 and 0 <= x0 <= 30 - crop - 2
        seen_ops.add(op)
        rgb, raw, dem = np_apply(f["rgb"], f["raw"], f["demosaiced"], y0, x0, op, crop, margin=2)
        assert_same(eager, {"rgb": rgb, "raw": raw, "demosaiced": dem})
    assert len(seen_ops) >= 5


def test_sample_params_cover_the_range_and_are_deterministic():
    ops = tuple(range(8))

    def draws(seed):
        fn = lambda i: tf.stack(pipeline.sample_params(seed, i, (20, 24), 8, ops))  # noqa: E731
        return [tuple(d) for d in tf.data.Dataset.range(300).map(fn).as_numpy_iterator()]

    first = draws(3)
    assert first == draws(3) and first != draws(4)
    assert first[17] == tuple(int(v) for v in pipeline.sample_params(3, 17, (20, 24), 8, ops))  # eager == mapped
    ys, xs, opss = zip(*first)
    assert set(ys) == set(range(0, 20 - 10 + 1, 2)) and set(xs) == set(range(0, 24 - 10 + 1, 2))
    assert set(opss) == set(ops)


def test_center_cropper_eager_equals_map_and_numpy():
    f = features(2, size=(18, 26))
    eager, mapped = eager_and_mapped(pipeline.make_center_cropper(8), f)
    assert_same(eager, mapped)
    y0, x0 = 4, 8  # (18 - 8) // 2 = 5 -> 4 (even); (26 - 8) // 2 = 9 -> 8
    rgb, raw, dem = np_apply(f["rgb"], f["raw"], f["demosaiced"], y0, x0, 0, 8, margin=0)
    assert_same(eager, {"rgb": rgb, "raw": raw, "demosaiced": dem})


def test_decoder_jpeg_npy_eager_equals_map_and_numpy(s7_like):
    ex = scan_pairs(s7_like(), sensor=SAMSUNG_S7)
    rec = {k: v[0] for k, v in pipeline.records(ex, True, False).items()}
    decode = pipeline.make_decoder(SAMSUNG_S7, pipeline._ArrayFormat.of(ex[0].raw))
    eager, mapped = eager_and_mapped(decode, rec)
    assert_same(eager, mapped)
    want_raw = np.load(ex[0].raw).astype(np.float32) / np.float32(1024)
    assert_same(eager, {"rgb": read_rgb_ref(ex[0].rgb), "raw": want_raw})


def test_decoder_png_rgb_png_raw_float16_demosaiced(tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "rgb").mkdir()
    (tmp_path / "raw").mkdir()
    rgb8 = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    assert cv2.imwrite(str(tmp_path / "rgb" / "a.png"), rgb8[..., ::-1])
    mosaic = rng.integers(60, 1021, (12, 16), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "raw" / "a.png"), mosaic)
    dem = rng.random((12, 16, 3)).astype(np.float16)
    np.save(tmp_path / "raw" / "a.demosaic.npy", dem)
    ex = scan_pairs(tmp_path, layout="folder", sensor=HUAWEI_P20)
    assert ex[0].demosaiced is not None
    rec = {k: v[0] for k, v in pipeline.records(ex, True, True).items()}
    decode = pipeline.make_decoder(HUAWEI_P20, pipeline._ArrayFormat("png"), pipeline._ArrayFormat.of(ex[0].demosaiced))
    eager, mapped = eager_and_mapped(decode, rec)
    assert_same(eager, mapped)
    want = {
        "rgb": rgb8.astype(np.float32) / np.float32(255),
        "raw": np_pack(mosaic).astype(np.float32) / np.float32(1020),  # P20 normaliser
        "demosaiced": dem.astype(np.float32),
    }
    assert_same(eager, want)


@pytest.mark.parametrize("augment", ["dihedral", "transpose", "none"])
def test_training_batches_keep_raw_the_rggb_mosaic_of_rgb(consistent_aim22, augment):
    ex = scan_pairs(consistent_aim22(), sensor=TEST16)
    ds = pipeline.make_dataset(ex, crop=16, batch_size=3, seed=5, augment=augment, sensor=TEST16)
    for batch in itertools.islice(ds.as_numpy_iterator(), 4):
        assert batch["rgb"].shape == (3, 16, 16, 3) and batch["raw"].shape == (3, 8, 8, 4)
        for rgb, raw, dem in zip(batch["rgb"], batch["raw"], batch["demosaiced"]):
            np.testing.assert_array_equal(raw, np_mosaic(rgb))
            np.testing.assert_array_equal(dem, rgb)


def test_non_rggb_sensor_is_cropped_to_rggb(tmp_path):
    grbg = SensorSpec("grbg16", "GRBG", 0, 65535, 65535)
    rng = np.random.default_rng(4)
    rgb16 = rng.integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    write_rgb16(tmp_path / "1_0.png", rgb16)
    np.save(tmp_path / "1_0.npy", np_mosaic(rgb16, "GRBG"))
    ex = scan_pairs(tmp_path, sensor=grbg)
    (batch,) = pipeline.make_dataset(ex, batch_size=1, training=False, sensor=grbg, with_demosaiced=False)
    want_rgb = rgb16[:, 1:-1].astype(np.float32) / np.float32(65535)  # GRBG -> RGGB: drop a column at each side
    np.testing.assert_array_equal(batch["rgb"][0], want_rgb)
    np.testing.assert_array_equal(batch["raw"][0], np_mosaic(want_rgb))


def test_dataset_is_deterministic_given_the_seed(consistent_aim22):
    ex = scan_pairs(consistent_aim22(), sensor=TEST16)

    def take(seed):
        ds = pipeline.make_dataset(ex, crop=8, batch_size=2, seed=seed, sensor=TEST16)
        return list(ds.take(4).as_numpy_iterator())

    a, b, c = take(1), take(1), take(2)
    for x, y in zip(a, b):
        assert_same(x, y)
    assert any(not np.array_equal(x["rgb"], y["rgb"]) for x, y in zip(a, c))


def test_training_visits_every_example_each_epoch(consistent_aim22):
    ex = scan_pairs(consistent_aim22(size=(20, 20)), sensor=TEST16)
    full = {read_rgb_ref(e.rgb).tobytes(): e for e in ex}
    ds = pipeline.make_dataset(ex, crop=20, batch_size=6, seed=0, augment="transpose", sensor=TEST16)
    for batch in ds.take(2).as_numpy_iterator():  # crop == image size: transpose or identity of a whole image
        got = {r.tobytes() if r.tobytes() in full else r.transpose(1, 0, 2).tobytes() for r in batch["rgb"]}
        assert got == set(full)


def test_eval_dataset_is_in_order_and_matches_numpy(consistent_aim22):
    ex = scan_pairs(consistent_aim22(), sensor=TEST16)
    ds = pipeline.make_dataset(ex, crop=12, batch_size=4, training=False, sensor=TEST16)
    batches = list(ds.as_numpy_iterator())
    assert [len(b["rgb"]) for b in batches] == [4, 2]
    rgb = np.concatenate([b["rgb"] for b in batches])
    for got, e in zip(rgb, ex):
        np.testing.assert_array_equal(got, read_rgb_ref(e.rgb)[4:16, 8:20])


def test_rgb_only_dataset(s7_like):
    ex = scan_rgb(s7_like())
    (batch,) = pipeline.make_dataset(ex, batch_size=3, training=False)
    assert set(batch) == {"rgb"}
    for got, e in zip(batch["rgb"].numpy(), ex):
        np.testing.assert_array_equal(got, read_rgb_ref(e.rgb))


def test_real_s7_rgb_folder_through_the_pipeline(realdata):
    ex = scan_rgb(realdata / "aim22_s7_rgb")
    (batch,) = pipeline.make_dataset(ex[:2], crop=256, batch_size=2, training=False).as_numpy_iterator()
    for got, e in zip(batch["rgb"], ex[:2]):
        np.testing.assert_array_equal(got, read_rgb_ref(e.rgb)[124:380, 124:380])


def test_requests_that_cannot_be_met_fail_up_front(consistent_aim22):
    root = consistent_aim22(demosaiced=False)
    ex = scan_pairs(root, sensor=TEST16)
    with pytest.raises(DataError, match=r"1_0\.npy: no demosaiced RAW.*prepare-gt"):
        pipeline.make_dataset(ex, crop=8, sensor=TEST16)
    with pytest.raises(ValueError, match=r"1_0\.png: 20x28 is smaller than the 22x22 window.*transpose"):
        pipeline.make_dataset(ex, crop=20, sensor=TEST16, with_demosaiced=False)
    with pytest.raises(ValueError, match="positive even size"):
        pipeline.make_dataset(ex, crop=7, sensor=TEST16, with_demosaiced=False)
    with pytest.raises(ValueError, match="need a SensorSpec"):
        pipeline.make_dataset(ex, crop=8, with_demosaiced=False)
    with pytest.raises(ValueError, match="augment: expected one of"):
        pipeline.make_dataset(ex, crop=8, augment="mirror", sensor=TEST16, with_demosaiced=False)
