"""RAW on the fly in tf.data: equal to `infer`'s tiled inference, eagerly and inside Dataset.map."""

import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.convert.tfdata import raw_fn, unit_rgb, with_raw
from revisp_tf.infer.tiled import TiledInference
from revisp_tf.io.images import write_rgb
from revisp_tf.io.images import read_rgb, read_rgb_samples
from revisp_tf.models import build_reverse_isp
from revisp_tf.models.inference_form import load_inference_model
from revisp_tf.infer.files import frame_context_of
from revisp_tf.weights import default_model_path
from tests.lively import enliven

S7_NAMES = ["78_30.jpg", "78_13.jpg", "48_29.jpg", "10_0.jpg"]  # 78_30 is 98.6 % overexposed


def _infer(runner, rgb, tile=512):
    """What `infer` computes before it rounds: tiled inference with the frame's context."""
    return runner(rgb, tile, 64, context=frame_context_of(runner.model, rgb))


def _by_rgb(pairs, images):
    """The RAW of each of `images`, from (rgb, raw) pairs in any order (group_by_window reorders them)."""
    out = [None] * len(images)
    for rgb, raw in pairs:
        [k] = [i for i, x in enumerate(images) if x.shape == rgb.shape and np.array_equal(unit_rgb(x).numpy(), rgb)]
        out[k] = raw
    return out


def test_real_s7_patches_equal_infer(realdata):
    samples = [read_rgb_samples(realdata / "aim22_s7_rgb" / n) for n in S7_NAMES]
    model = load_inference_model(default_model_path())  # what `infer` runs: the shipped dual net with a global stage
    runner = TiledInference(model)
    expected = [_infer(runner, x) for x in samples]  # 504 px: one tile, as infer runs it
    fn = raw_fn(model)
    for name, x, want in zip(S7_NAMES, samples, expected):
        rgb, raw = fn(tf.constant(x))  # eagerly
        np.testing.assert_array_equal(rgb.numpy(), read_rgb(realdata / "aim22_s7_rgb" / name))
        assert np.abs(raw.numpy() - want).max() <= 1e-6
    pairs = with_raw(tf.data.Dataset.from_tensor_slices(np.stack(samples)), model, batch_size=3)
    got = _by_rgb(pairs.as_numpy_iterator(), samples)
    for raw, want in zip(got, expected):
        assert np.abs(raw - want).max() <= 1e-6


def test_generated_frames_of_mixed_size():
    """A global-stage dual net on frames of three sizes (two odd), uint8 and uint16, one with a blown-out area."""
    model = enliven(build_reverse_isp("dual", base_filters=2, depth=2, global_stage="upi"))
    runner = TiledInference(model)
    rng = np.random.default_rng(0)
    shapes = [(40, 56), (40, 56), (41, 30), (24, 33), (40, 56)]
    frames = [(rng.random((h, w, 3)) * 255).astype(np.uint8) for h, w in shapes]
    frames[1][5:20, 10:30] = 255
    cropped = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames]  # odd sizes lose a row / column
    expected = [_infer(runner, c) for c in cropped]
    assert max(np.abs(e).max() for e in expected) > 0.1
    dataset = tf.data.Dataset.from_generator(lambda: iter(frames), output_signature=tf.TensorSpec((None, None, 3), tf.uint8))
    pairs = list(with_raw(dataset, model, batch_size=2).as_numpy_iterator())
    assert len(pairs) == len(frames)
    for raw, want in zip(_by_rgb(pairs, cropped), expected):
        assert raw.shape == want.shape and np.abs(raw - want).max() <= 1e-6
    wide = (rng.random((20, 24, 3)) * 65535).astype(np.uint16)  # eagerly, a uint16 frame
    rgb, raw = raw_fn(model)(wide)
    np.testing.assert_array_equal(rgb.numpy(), wide.astype(np.float32) / np.float32(65535))
    assert np.abs(raw.numpy() - _infer(runner, wide)).max() <= 1e-6


def test_unit_rgb_scales_as_the_reader_does(tmp_path):
    img = (np.random.default_rng(1).random((6, 8, 3)) * 255).astype(np.uint8)
    path = write_rgb(tmp_path / "a.png", img)
    np.testing.assert_array_equal(unit_rgb(read_rgb_samples(path)).numpy(), read_rgb(path))
    with pytest.raises(ValueError, match="batch_size=0"):
        with_raw(tf.data.Dataset.from_tensors(img), None, batch_size=0)
