import keras
import numpy as np
import pytest

from revisp_tf.isp import bayer
from revisp_tf.models import build_reverse_isp, build_unet, predict_bayer, trainable_parameter_count, training_model
from revisp_tf.models.layers import CropLike, PadToMultiple


def test_authors_unet_size():
    unet = build_unet()
    assert trainable_parameter_count(unet) == 34_527_747
    convs = [l for l in unet.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 23
    assert [c.filters for c in convs[:10:2]] == [64, 128, 256, 512, 1024]
    assert sum(isinstance(l, keras.layers.UpSampling2D) for l in unet.layers) == 4
    assert not any(isinstance(l, keras.layers.Conv2DTranspose) for l in unet.layers)


def test_dual_and_single_sizes():
    assert trainable_parameter_count(build_reverse_isp("dual")) == 69_055_494
    assert trainable_parameter_count(build_reverse_isp("single")) == 34_527_747


def test_padding_is_the_authors_constant_one_frame():
    x = np.random.default_rng(0).random((1, 504, 496, 2)).astype(np.float32)
    padded = PadToMultiple(16)(x).numpy()
    want = np.pad(x, [(0, 0), (4, 4), (0, 0), (0, 0)], constant_values=1.0)  # 504 -> 512, 496 stays
    np.testing.assert_array_equal(padded, want)
    np.testing.assert_array_equal(CropLike(16)([padded, x]).numpy(), x)
    odd = np.zeros((1, 37, 50, 1), np.float32)
    np.testing.assert_array_equal(PadToMultiple(16)(odd).numpy()[0, :, :, 0] == 0, np.pad(np.ones((37, 50)), [(5, 6), (7, 7)]) == 1)


def test_unet_any_size_and_clamped():
    unet = build_unet(4, 3, base_filters=4)
    head = unet.get_layer("head")
    head.set_weights([np.zeros_like(head.kernel.numpy()), np.array([-0.5, 0.3, 1.7], np.float32)])
    out = unet(np.random.rand(2, 37, 22, 4).astype(np.float32)).numpy()
    assert out.shape == (2, 37, 22, 3)
    np.testing.assert_array_equal(out[..., 0], 0.0)
    np.testing.assert_allclose(out[..., 1], 0.3)
    np.testing.assert_array_equal(out[..., 2], 1.0)


def _constant_net(model, name, value):
    head = model.get_layer(name).get_layer("head")
    head.set_weights([np.zeros_like(head.kernel.numpy()), np.full(3, value, np.float32)])



def _check_fusion_exact(rgb):
    model = build_reverse_isp("dual", base_filters=4)
    _constant_net(model, "unet_oe", 0.25)
    _constant_net(model, "unet_noe", 0.75)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    want_full = np.where((y >= 0.978)[..., None], 0.25, 0.75).astype(np.float32) * np.ones(3, np.float32)
    want = np.stack([want_full[:, 0::2, 0::2, 0], want_full[:, 0::2, 1::2, 1], want_full[:, 1::2, 0::2, 1], want_full[:, 1::2, 1::2, 2]], -1)
    got = model(rgb).numpy()
    np.testing.assert_array_equal(got, want)
    assert 0 < (got == 0.25).mean() < 1  # both nets contribute


def test_dual_fusion_takes_oe_pixels_from_the_oe_net(synthetic_rgb):
    _check_fusion_exact(synthetic_rgb)


def test_dual_fusion_on_real_overexposed_patch(s7_patches):
    _check_fusion_exact(s7_patches["78_30.jpg"][None])  # 13% overexposed


@pytest.mark.parametrize("variant", ["baseline", "single", "dual"])
def test_training_model_shares_weights(variant, synthetic_rgb):
    model = build_reverse_isp(variant, base_filters=4)
    train = training_model(model)
    assert len(train.weights) == len(model.weights)
    out = train(synthetic_rgb)
    np.testing.assert_array_equal(out["bayer"].numpy(), model(synthetic_rgb).numpy())
    if variant != "baseline":
        np.testing.assert_array_equal(out["bayer"].numpy(), bayer.mosaic(out["demosaiced"]).numpy())
    if variant == "dual":
        m = out["mask"].numpy()
        np.testing.assert_allclose(out["demosaiced"].numpy(), m * out["oe"].numpy() + (1 - m) * out["noe"].numpy(), atol=1e-7)


@pytest.mark.parametrize("variant", ["baseline", "single", "dual"])
def test_keras_save_load_identical(variant, tmp_path, synthetic_rgb):
    model = build_reverse_isp(variant, base_filters=4)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(synthetic_rgb).numpy(), model(synthetic_rgb).numpy())
    assert set(training_model(loaded).output) == set(training_model(model).output)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((1, 6, 7, 3), np.float32), "even height and width"),
        (np.zeros((1, 5, 6, 3), np.float32), "even height and width"),
        (np.zeros((1, 6, 6, 4), np.float32), "3 channels"),
        (np.zeros((1, 6, 6, 3), np.uint8), "dtype uint8"),
        (np.full((1, 6, 6, 3), 2.0, np.float32), r"values in \[0, 1\]"),
    ],
)
def test_bad_model_input(bad, message):
    model = build_reverse_isp("single", base_filters=4)
    with pytest.raises(ValueError, match=message):
        predict_bayer(model, bad)


def test_model_call_rejects_odd_and_out_of_range():
    model = build_reverse_isp("dual", base_filters=4)
    with pytest.raises(ValueError, match="even height and width"):
        model(np.zeros((1, 6, 7, 3), np.float32))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        model(np.full((1, 6, 6, 3), 1.5, np.float32))


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown variant 'triple'"):
        build_reverse_isp("triple")


def test_clamp_is_straight_through_only_in_training():
    import tensorflow as tf

    from revisp_tf.models.layers import Clamp01

    x = tf.constant([-0.5, 0.25, 1.5])
    for training in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = Clamp01()(x, training=training)
            total = tf.reduce_sum(y)
        np.testing.assert_array_equal(y.numpy(), [0.0, 0.25, 1.0])
        grad = tape.gradient(total, x).numpy()
        np.testing.assert_array_equal(grad, [1.0, 1.0, 1.0] if training else [0.0, 1.0, 0.0])
