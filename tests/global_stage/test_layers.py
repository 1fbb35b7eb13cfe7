"""The global stage: curves equal the NumPy fit, UPI init equals UPI, zero corrections equal the global stage,
and .keras save/load keeps outputs."""

import numpy as np
import pytest

from revisp_tf.global_stage.context import frame_context
from revisp_tf.global_stage.fit import GlobalInverse
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.unprocess import HIGHLIGHT_INFLECTION
from revisp_tf.models import (
    build_reverse_isp,
    model_inputs,
    predict_bayer,
    trainable_parameter_count,
    training_model,
)
from revisp_tf.scoring.baselines import baseline_bayer


def _random_inverse(seed, knots=24):
    rng = np.random.default_rng(seed)
    return GlobalInverse(0.3 * rng.random((3, 3, knots)), 0.01 * rng.random(3))


def test_curves_layer_equals_numpy_inverse(synthetic_rgb):
    model = build_reverse_isp("global", global_stage="fitted")
    inverse = _random_inverse(0)
    model.get_layer("global_curves").set_inverse(inverse)
    got = training_model(model)(model_inputs(model, synthetic_rgb))["global"].numpy()
    assert np.abs(got - inverse.demosaiced(synthetic_rgb)).max() < 1e-5
    back = model.get_layer("global_curves").inverse()
    assert np.allclose(back.curves, inverse.curves, atol=1e-7) and np.allclose(back.bias, inverse.bias, atol=1e-7)


def test_upi_initialisation_equals_upi_below_the_highlight_fade(s7_patches):
    """Below UPI's highlight fade (grey HIGHLIGHT_INFLECTION) the curves are UPI but for the piecewise-linear
    interpolation of its tone curve at 24 knots: measured max 3.3e-3, mean 1e-4 (about 75 dB)."""
    model = build_reverse_isp("global", global_stage="upi")
    for rgb in s7_patches.values():
        ours, upi = predict_bayer(model, rgb), baseline_bayer("upi", rgb)
        below = mosaic(np.repeat(rgb.mean(-1, keepdims=True), 3, -1)).numpy() < HIGHLIGHT_INFLECTION
        err = np.abs(ours - upi)[below]
        assert err.max() < 5e-3 and err.mean() < 2e-4


@pytest.mark.parametrize("variant", ["single", "dual"])
def test_zero_corrections_equal_the_global_stage(variant, s7_patches):
    """The U-Nets' heads start at zero: an untrained model is exactly its global stage, mask or not."""
    full = build_reverse_isp(variant, base_filters=4, depth=2, global_stage="fitted")
    alone = build_reverse_isp("global", global_stage="fitted")
    inverse = _random_inverse(1)
    for m in (full, alone):
        m.get_layer("global_curves").set_inverse(inverse)
    rgb = s7_patches["78_30.jpg"]  # 13 % overexposed: both nets contribute
    assert np.array_equal(predict_bayer(full, rgb), predict_bayer(alone, rgb))
    expected = np.clip(inverse.predict(rgb), 0, 1)
    assert np.abs(predict_bayer(alone, rgb) - expected).max() < 1e-5


def test_global_stage_none_keeps_the_papers_models():
    assert trainable_parameter_count(build_reverse_isp("single")) == 34_527_747
    assert trainable_parameter_count(build_reverse_isp("dual")) == 69_055_494
    assert len(build_reverse_isp("dual", 4, 2).inputs) == 1


def test_save_and_load_keep_outputs(tmp_path, synthetic_rgb):
    import keras

    model = build_reverse_isp("dual", 4, 2, global_stage="fitted")
    model.get_layer("global_curves").set_inverse(_random_inverse(2))
    gains = model.get_layer("frame_gains")
    gains.reference.assign(np.linspace(-0.2, 0.3, gains.reference.shape[0]))
    gains.kernel.assign(np.random.default_rng(2).normal(0, 0.1, gains.kernel.shape))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert np.array_equal(predict_bayer(model, synthetic_rgb), predict_bayer(loaded, synthetic_rgb))


def test_correction_is_bounded_and_zero_is_identity():
    from revisp_tf.global_stage.layers import MAX_LOG_GAIN, MAX_OFFSET, Correction

    est = np.full((1, 2, 2, 3), 0.4, np.float32)
    net = np.zeros((1, 2, 2, 6), np.float32)
    assert np.array_equal(Correction()([est, net]).numpy(), est)
    net[..., :3], net[..., 3:] = 50.0, -50.0  # far beyond the bounds
    assert np.allclose(Correction()([est, net]).numpy(), 0.4 * np.exp(MAX_LOG_GAIN) - MAX_OFFSET)


def test_nets_see_the_radius_and_blurred_view_not_the_frame_statistics():
    from revisp_tf.global_stage.layers import LocalContext

    ctx = frame_context(np.random.default_rng(4).random((32, 48, 3)).astype(np.float32))[None]
    local = LocalContext()(ctx).numpy()
    assert local.shape[-1] == 4
    assert np.allclose(local[..., 0], 0.5 * (ctx[..., 0] ** 2 + ctx[..., 1] ** 2))
    assert np.array_equal(local[..., 1:], ctx[..., 2:5])


@pytest.mark.slow
def test_litert_equals_keras_for_a_global_stage_model(tmp_path, s7_patches):
    """The two-input (rgb, context) export, static and dynamic, on a real overexposed patch; corrections non-zero."""
    from revisp_tf.export.convert import export_tflite

    model = build_reverse_isp("dual", 4, 2, global_stage="fitted")
    model.get_layer("global_curves").set_inverse(_random_inverse(5))
    rng = np.random.default_rng(5)
    for name in ("unet_oe", "unet_noe"):
        head = model.get_layer(name).get_layer("head")
        head.kernel.assign(rng.normal(0, 0.05, head.kernel.shape))
    rgb = s7_patches["78_30.jpg"][:256, :384]
    for size in ((256, 384), None):
        report = export_tflite(model, tmp_path / "m.tflite", size=size, check_data=[rgb])
        assert report.max_abs_error <= 1e-5, (size, report.max_abs_error)


def test_frame_gains_apply_recorded_gains_exactly_and_the_prior_elsewhere():
    """Recorded wb and exposure replace the prior's gains; wb alone keeps the prior's level (green's)."""
    from revisp_tf.global_stage.context import STATS, frame_context
    from revisp_tf.global_stage.layers import FrameGains
    from revisp_tf.io.metadata import CaptureMetadata

    rgb = np.random.default_rng(9).random((16, 16, 3)).astype(np.float32)
    layer = FrameGains()
    estimate = np.full((1, 16, 16, 3), 0.25, np.float32)
    layer([estimate, frame_context(rgb)[None]])
    rng = np.random.default_rng(3)
    layer.kernel.assign(rng.normal(0, 0.2, layer.kernel.shape))
    layer.bias.assign([0.3, -0.1, 0.2])
    stats = frame_context(rgb)[0, 0, STATS]
    prior = (stats - layer.reference.numpy()) @ layer.kernel.numpy() + layer.bias.numpy()  # NumPy reference

    def gains(capture):
        return layer([estimate, frame_context(rgb, capture)[None]]).numpy()[0, 0, 0] / 0.25

    np.testing.assert_allclose(gains(None), np.exp(prior), rtol=1e-5)
    # Curves fitted frame-blind (recorded 0, as built) ignore recorded gains: they hold the training frames' own.
    np.testing.assert_allclose(gains(CaptureMetadata((2.0, 1.0, 1.5), 1.6, "t")), np.exp(prior), rtol=1e-5)
    layer.recorded.assign(1.0)
    np.testing.assert_allclose(gains(CaptureMetadata((2.0, 1.0, 1.5), 1.6, "t")), 1 / (np.array([2.0, 1.0, 1.5]) * 1.6), rtol=1e-5)
    wb_only = np.exp(prior[1]) / np.array([2.0, 1.0, 1.5])
    np.testing.assert_allclose(gains(CaptureMetadata((2.0, 1.0, 1.5), None, "exif")), wb_only, rtol=1e-5)
