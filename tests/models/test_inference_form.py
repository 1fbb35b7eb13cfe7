"""The inference form against the trained model, and its two rewrites against NumPy references.

References: a NumPy nearest x2 upsample + zero-padded 3x3 convolution (for the sub-pixel kernel),
the BatchNorm inference formula (for the fold), the trained model itself on real S7 patches and
generated frames, and the closed-form FLOPs of the up blocks (16 instead of 36 multiply-adds).
"""

import keras
import numpy as np
import pytest

from revisp_tf.models import build_reverse_isp, load_reverse_isp
from revisp_tf.models.inference_form import (
    SubpixelUpConv,
    conv_flops,
    fold_batchnorm,
    fusion_parts,
    inference_form,
    subpixel_kernel,
)
from revisp_tf.models.reverse_isp import model_inputs
from revisp_tf.weights import default_model_path
from tests.context_model import CONTEXT_CHANNELS, context_dual_model
from tests.lively import generated_frame, lively_model


def numpy_upsample_conv(x, kernel, bias):
    """Nearest x2 upsample, then a 3x3 convolution with zero 'same' padding (cross-correlation, as Keras)."""
    up = x.repeat(2, axis=1).repeat(2, axis=2).astype(np.float64)
    padded = np.pad(up, [(0, 0), (1, 1), (1, 1), (0, 0)])
    h, w = up.shape[1:3]
    out = np.zeros((*up.shape[:3], kernel.shape[-1]))
    for u in range(3):
        for v in range(3):
            out += np.einsum("nhwc,cd->nhwd", padded[:, u : u + h, v : v + w], kernel[u, v])
    return out + bias


def _unets(model):
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def test_subpixel_conv_equals_upsample_then_conv():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 7, 6)).astype(np.float32)
    kernel, bias = rng.normal(size=(3, 3, 6, 4)), rng.normal(size=4)
    layer = SubpixelUpConv(4)
    layer.build(x.shape)
    layer.set_weights([subpixel_kernel(kernel).astype(np.float32), bias.astype(np.float32)])
    got = layer(x).numpy()
    assert got.shape == (2, 10, 14, 4)
    np.testing.assert_allclose(got, numpy_upsample_conv(x, kernel, bias), atol=1e-5, rtol=0)
    # Phase (0, 0) of the top-left output pixel sees only input (0, 0), through the taps k1 + k2 per axis.
    np.testing.assert_allclose(subpixel_kernel(kernel)[1, 1, :, :4], kernel[1:, 1:].sum(axis=(0, 1)))


def test_fold_batchnorm_equals_the_inference_formula():
    rng = np.random.default_rng(1)
    x, kernel, bias = rng.normal(size=(50, 6)), rng.normal(size=(1, 1, 6, 3)), rng.normal(size=3)
    gamma, beta, mean, var = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.1, 3, 3)
    want = gamma * (x @ kernel[0, 0] + bias - mean) / np.sqrt(var + 1e-5) + beta
    k, b = fold_batchnorm(kernel, bias, gamma, beta, mean, var, 1e-5)
    np.testing.assert_allclose(x @ k[0, 0] + b, want, rtol=1e-12)


@pytest.mark.parametrize("variant", ["baseline", "single", "dual"])
def test_structure_no_batchnorm_no_upsample_other_layers_kept(variant):
    model = lively_model(variant, depth=3)
    form = inference_form(model)
    for unet in _unets(form):
        kinds = [type(layer).__name__ for layer in unet.layers]
        assert "BatchNormalization" not in kinds and "UpSampling2D" not in kinds
        # depth 3: 8 encoder, 3 up, 6 decoder convs and the head; each up conv is now a SubpixelUpConv
        assert kinds.count("SubpixelUpConv") == 3 and kinds.count("Conv2D") == 8 + 6 + 1
    kept = [layer.name for layer in model.layers if not isinstance(layer, keras.Model)]
    assert all(form.get_layer(name) is model.get_layer(name) for name in kept if name != "rgb")
    rgb = generated_frame(64, 80, seed=1)[None]
    np.testing.assert_allclose(form.predict_on_batch(rgb), model.predict_on_batch(rgb), atol=1e-5, rtol=0)
    again = inference_form(form)  # nothing left to rewrite
    np.testing.assert_array_equal(again.predict_on_batch(rgb), form.predict_on_batch(rgb))


@pytest.mark.parametrize("variant", ["single", "dual"])
def test_equals_trained_model_on_real_patches(s7_patches, variant):
    model = lively_model(variant, depth=4)
    form = inference_form(model)
    rgb = np.stack(list(s7_patches.values()))
    want = model.predict_on_batch(rgb)
    assert want.std() > 0.05  # not clamped flat
    np.testing.assert_allclose(form.predict_on_batch(rgb), want, atol=1e-5, rtol=0)


def test_shipped_model_form_equals_it(s7_patches, tmp_path):
    path = default_model_path()
    before = path.read_bytes()
    model = load_reverse_isp(path)
    form = inference_form(model)
    inputs = model_inputs(model, np.stack(list(s7_patches.values())))  # with each patch's context if it takes one
    np.testing.assert_allclose(form.predict_on_batch(inputs), model.predict_on_batch(inputs), atol=1e-5, rtol=0)
    assert path.read_bytes() == before  # the trained file is untouched


def test_each_rewrite_alone_is_exact_too():
    model = lively_model("dual", depth=2)
    rgb = generated_frame(48, 64)[None]
    want = model.predict_on_batch(rgb)
    for options in (dict(subpixel=False), dict(fold_batchnorm_layers=False)):
        form = inference_form(model, **options)
        kinds = {type(layer).__name__ for unet in _unets(form) for layer in unet.layers}
        assert ("UpSampling2D" in kinds) == (not options.get("subpixel", True))
        assert ("BatchNormalization" in kinds) == (not options.get("fold_batchnorm_layers", True))
        np.testing.assert_allclose(form.predict_on_batch(rgb), want, atol=1e-5, rtol=0)


def test_flops_drop_by_the_up_blocks_share():
    """Per up block at low resolution h x w: 2*9*Cin*Cout*(2h)(2w) FLOPs before, 2*4*Cin*Cout*(2h)(2w) after."""
    base, depth, size = 8, 4, 128
    model = build_reverse_isp("single", base, depth)
    saved = 0
    for level in range(1, depth + 1):  # up block from level `level` to level - 1
        cin, cout, h = base * 2**level, base * 2 ** (level - 1), size >> level
        saved += 2 * (9 - 4) * cin * cout * (2 * h) ** 2
    before, after = conv_flops(model, size, size), conv_flops(inference_form(model), size, size)
    assert before - after == saved
    assert 0.15 < saved / before < 0.2  # the up convs are ~30 % of the net, 16/36 of them remain


def test_context_model_unets_with_other_channels_and_no_clamp():
    """Two inputs, U-Nets of 4 + C inputs without output clamp, a branch layer after each net, a context conv kept."""
    model = context_dual_model(depth=2)
    form = inference_form(model)
    assert form.get_layer("context_gain") is model.get_layer("context_gain")
    assert [t.name for t in form.inputs] == ["rgb", "context"]
    rng = np.random.default_rng(2)
    rgb = generated_frame(48, 64)[None]
    context = rng.normal(size=(1, 48, 64, CONTEXT_CHANNELS)).astype(np.float32)
    want = model.predict_on_batch([rgb, context])
    assert want.std() > 0.05
    np.testing.assert_allclose(form.predict_on_batch([rgb, context]), want, atol=1e-5, rtol=0)
    parts = fusion_parts(form)
    assert parts.block_local and [t.name for t in parts.fuse.inputs][:2] == ["rgb", "context"]
    oe, noe = parts.oe.predict_on_batch([rgb, context]), parts.noe.predict_on_batch([rgb, context])
    assert "unet_oe_plus_estimate" in [layer.name for layer in parts.oe.layers]  # the branch is found by the graph
    np.testing.assert_array_equal(parts.fuse.predict_on_batch([rgb, context, oe, noe]), form.predict_on_batch([rgb, context]))


def test_fusion_parts_of_single_is_none_and_a_spatial_layer_after_fusion_is_not_local():
    assert fusion_parts(lively_model("single")) is None
    model = lively_model("dual")
    assert fusion_parts(model).block_local
    smoothed = keras.layers.AveragePooling2D(3, strides=1, padding="same", name="blur")(model.output)
    assert not fusion_parts(keras.Model(model.input, smoothed)).block_local


@pytest.mark.parametrize("variant", ["single", "dual"])
def test_global_stage_model_form_equals_it(variant):
    """The global-stage models (rgb + context, U-Nets of more inputs and 6 unclamped outputs): stage layers kept."""
    from revisp_tf.global_stage.context import frame_context
    from tests.lively import enliven

    model = enliven(build_reverse_isp(variant, base_filters=4, depth=2, global_stage="upi"))
    form = inference_form(model)
    stage = [layer.name for layer in model.layers if not isinstance(layer, keras.Model) and layer.weights]
    assert "global_curves" in stage and all(form.get_layer(name) is model.get_layer(name) for name in stage)
    rgb = generated_frame(64, 96, seed=3)
    inputs = [rgb[None], frame_context(rgb)[None]]
    want = model.predict_on_batch(inputs)
    assert want.std() > 0.05
    np.testing.assert_allclose(form.predict_on_batch(inputs), want, atol=1e-5, rtol=0)
