"""TFLite export: LiteRT against Keras, on the real AIM 2022 S7 patches and on generated images.

The fixtures export the inference form (sub-pixel up convs, BatchNorm folded), as `revisp-tf
export` does, and the tests compare LiteRT with the *trained* model. Small random models
(`lively_model`, base width 4, depth 4 as in the paper) keep conversion fast;
`mobile/benchmark_litert.py --export-width 64` exports and checks the paper's width.
"""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from revisp_tf.export.calibration import calibration_images
from revisp_tf.export.convert import NearestUpsample, convertible, export_tflite
from revisp_tf.export.litert import run, run_skipping, tflite_ops
from revisp_tf.models.inference_form import inference_form
from tests.conftest import REALDATA, REPO, read_jpeg_rgb
from tests.lively import generated_frame, lively_model

# Scene 78 is the overexposed one (78_30: 13 % of pixels over the mask threshold).
REAL_NAMES = ("78_30.jpg", "78_8.jpg", "48_29.jpg", "10_0.jpg")


def real_patches():
    return [read_jpeg_rgb(REALDATA / "aim22_s7_rgb" / n) for n in REAL_NAMES]


def litert(path, rgb):
    """Runs one image through the `reverse_isp` signature, resizing the input tensor explicitly."""
    interpreter = Interpreter(model_path=str(path), num_threads=2)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [1, *rgb.shape])
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, rgb[None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def keras_out(model, rgb):
    return model.predict_on_batch(rgb[None])[0]


@pytest.fixture(scope="module")
def single_static(tmp_path_factory):
    model = lively_model("single", depth=4)
    path = tmp_path_factory.mktemp("single") / "single.tflite"
    return model, export_tflite(inference_form(model), path, size=(504, 504))


@pytest.fixture(scope="module")
def dual_dynamic(tmp_path_factory):
    model = lively_model("dual", depth=4)
    path = tmp_path_factory.mktemp("dual") / "dual.tflite"
    return model, export_tflite(inference_form(model), path, size=None)


def test_contract_signature_names_shapes_dtypes(single_static, dual_dynamic):
    skip = {
        "skip_mask": {"inputs": ["rgb"], "outputs": ["mask"]},
        "skip_oe": {"inputs": ["rgb"], "outputs": ["oe"]},
        "skip_noe": {"inputs": ["rgb"], "outputs": ["noe"]},
        "skip_fuse": {"inputs": ["noe", "oe", "rgb"], "outputs": ["bayer"]},
    }
    for (_, report), shape, extra in ((single_static, [1, 504, 504, 3], {}), (dual_dynamic, [1, -1, -1, 3], skip)):
        interpreter = Interpreter(model_path=str(report.path))
        assert interpreter.get_signature_list() == {"reverse_isp": {"inputs": ["rgb"], "outputs": ["bayer"]}, **extra}
        # reverse_isp is subgraph 0, which the index-based calls below address
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
        assert inp["shape_signature"].tolist() == shape
        assert out["shape_signature"][-1] == 4  # dynamic models leave batch, height and width open
        interpreter.resize_tensor_input(inp["index"], [1, 504, 504, 3])
        interpreter.allocate_tensors()
        interpreter.invoke()  # a dynamic model knows its output shape only after running
        assert interpreter.get_output_details()[0]["shape"].tolist() == [1, 252, 252, 4]
    assert sorted(p.name for p in report.path.parent.iterdir()) == ["dual.tflite"]  # no temporary left behind


def test_only_builtin_ops(single_static, dual_dynamic, capsys):
    for _, report in (single_static, dual_dynamic):
        ops = tflite_ops(report.path.read_bytes())
        assert ops == report.ops and "CONV_2D" in ops and "DEPTH_TO_SPACE" in ops  # the sub-pixel up convs
        assert "RESIZE_NEAREST_NEIGHBOR" not in ops  # no upsampled tensor
        assert not any(op.startswith("Flex") for op in ops)
        # Independent check: TFLite's own analyzer lists every op; Flex ops would show as FlexXxx / CUSTOM.
        tf.lite.experimental.Analyzer.analyze(model_path=str(report.path))
        text = capsys.readouterr().out
        assert "Op#0" in text and "Flex" not in text and "CUSTOM" not in text


def test_fp32_matches_keras_on_generated_images(single_static, dual_dynamic):
    for model, report in (single_static, dual_dynamic):
        assert report.max_abs_error <= 1e-4  # the export's own check, on calibration_images()
        rgb = generated_frame(504, 504, seed=3)
        np.testing.assert_allclose(litert(report.path, rgb), keras_out(model, rgb), atol=1e-4, rtol=0)
    model, report = dual_dynamic
    rgb = generated_frame(256, 384, seed=4)
    got = litert(report.path, rgb)
    assert got.shape == (128, 192, 4)
    np.testing.assert_allclose(got, keras_out(model, rgb), atol=1e-4, rtol=0)
    assert [c[0] for c in report.checks] == [(504, 504), (256, 384)]


def test_fp32_matches_keras_on_real_patches(realdata, single_static, dual_dynamic):
    """The exported inference form against the trained Keras model, within 1e-5."""
    for model, report in (single_static, dual_dynamic):
        for rgb in real_patches():
            want = keras_out(model, rgb)
            assert want.std() > 0.01  # the model's output is not flat on these patches
            np.testing.assert_allclose(litert(report.path, rgb), want, atol=1e-5, rtol=0)
    model, report = dual_dynamic
    crop = real_patches()[0][100:356, 60:444]  # 256x384 at an even offset
    np.testing.assert_allclose(litert(report.path, crop), keras_out(model, crop), atol=1e-5, rtol=0)


def test_skip_signatures_run_only_the_nets_the_mask_needs(dual_dynamic):
    model, report = dual_dynamic
    assert report.skip_max_abs_error <= 1e-5
    interpreter = Interpreter(model_path=str(report.path), num_threads=2)
    dark, blown = generated_frame(96, 128, seed=8) * 0.5, np.ones((96, 128, 3), np.float32)
    for rgb, nets in ((generated_frame(96, 128, seed=8), ("oe", "noe")), (dark, ("noe",)), (blown, ("oe",))):
        got, ran = run_skipping(interpreter, rgb)
        assert ran == nets
        np.testing.assert_allclose(got, keras_out(model, rgb), atol=1e-5, rtol=0)


def test_nearest_upsample_equals_keras_upsampling():
    x = np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(NearestUpsample((2, 2))(x).numpy(), keras.layers.UpSampling2D(2)(x).numpy())
    np.testing.assert_array_equal(NearestUpsample((2, 2))(x).numpy(), x.repeat(2, axis=1).repeat(2, axis=2))
    model = lively_model("dual", depth=2)
    clone = convertible(model)
    assert all(a is b for a, b in zip(clone.weights, model.weights))  # shared, not copied
    assert not any(isinstance(l, keras.layers.UpSampling2D) for u in clone.layers if isinstance(u, keras.Model) for l in u.layers)
    rgb = generated_frame(40, 56)
    np.testing.assert_array_equal(keras_out(clone, rgb), keras_out(model, rgb))


def test_bad_arguments_are_refused(tmp_path):
    model = lively_model("single", depth=2)
    with pytest.raises(ValueError, match="quantize='int4'"):
        export_tflite(model, tmp_path / "m.tflite", quantize="int4")
    with pytest.raises(ValueError, match="even height and width"):
        export_tflite(model, tmp_path / "m.tflite", size=(505, 504))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        export_tflite(model, tmp_path / "m.tflite", check_data=[np.full((8, 8, 3), 2.0, np.float32)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_tflite(model, tmp_path / "missing" / "m.tflite")
    assert not list(tmp_path.iterdir())


def test_calibration_images_are_real_photos_with_highlights():
    images = calibration_images((504, 504), count=4)
    assert all(img.shape == (504, 504, 3) and img.dtype == np.float32 for img in images)
    luma = [0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2] for img in images]
    assert max(np.mean(y >= 0.978) for y in luma) > 0.01  # some overexposed pixels to calibrate the mask path
    assert all(img.std() > 0.1 for img in images)


@pytest.mark.slow
@pytest.mark.parametrize("variant, size", [("single", None), ("dual", (504, 504))])
def test_fp32_other_variant_size_pairs(tmp_path, variant, size):
    model = lively_model(variant, depth=4)
    check = real_patches()[:2] if REALDATA.is_dir() else [generated_frame(504, 504, seed=5)]
    report = export_tflite(model, tmp_path / "m.tflite", size=size, check_data=check)
    assert report.max_abs_error <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("quantize, max_error, mean_error", [("fp16", 5e-3, 5e-4), ("int8", 0.05, 0.01)])
def test_quantized_exports_stay_close(tmp_path, dual_dynamic, quantize, max_error, mean_error):
    model, fp32 = dual_dynamic
    real = sorted((REALDATA / "aim22_s7_rgb").glob("*.jpg"))[::12] if REALDATA.is_dir() else None
    calibration = calibration_images((504, 504), count=16, paths=real)
    check = real_patches() if REALDATA.is_dir() else [generated_frame(504, 504, seed=6)]
    report = export_tflite(
        model, tmp_path / "m.tflite", quantize=quantize, size=None, representative_data=calibration, check_data=check
    )
    assert report.size_bytes < 0.6 * fp32.size_bytes
    assert report.max_abs_error <= max_error and report.mean_abs_error <= mean_error
    if quantize == "int8":
        interpreter = Interpreter(model_path=str(report.path))
        kernels = [t["shape"] for t in interpreter.get_tensor_details() if t["dtype"] == np.int8 and len(t["shape"]) == 4]
        conv_weights = [s for s in kernels if s[0] > 1 and s[1:3].tolist() in ([3, 3], [1, 1])]
        assert len(conv_weights) == 44  # the 46 3x3/1x1 conv kernels of both U-Nets but their heads are int8
        details = interpreter.get_tensor_details()
        heads = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D" and "/head" in details[op["outputs"][0]]["name"]]
        assert len(heads) == 2 and all(details[op["inputs"][1]]["dtype"] == np.float32 for op in heads)  # default float_parts
        threshold = [op for op in interpreter._get_ops_details() if op["op_name"] == "GREATER_EQUAL"]
        assert threshold and all(details[i]["dtype"] == np.float32 for op in threshold for i in op["inputs"])  # mask in float


def test_mobile_runner_writes_what_keras_predicts(dual_dynamic, tmp_path, capsys):
    """mobile/run_litert.py (LiteRT only, no TensorFlow) on an image file gives the Keras output."""
    import importlib.util

    import cv2

    spec = importlib.util.spec_from_file_location("run_litert", REPO / "mobile" / "run_litert.py")
    runner = importlib.util.module_from_spec(spec)
    sys.modules["run_litert"] = runner  # dataclasses look their module up there
    spec.loader.exec_module(runner)
    model, report = dual_dynamic
    rgb16 = np.round(generated_frame(96, 160, seed=7) * 65535).astype(np.uint16)
    dark16 = rgb16 // 2  # nothing overexposed: the OE net is skipped
    cv2.imwrite(str(tmp_path / "frame.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "dark.png"), cv2.cvtColor(dark16, cv2.COLOR_RGB2BGR))
    args = [str(report.path), str(tmp_path / "frame.png"), str(tmp_path / "dark.png"), "--num-threads", "1"]
    assert runner.main([*args, "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("frame.png") and lines[0].endswith("(ran oe and noe)") and lines[1].endswith("(ran noe)")
    for name, img in (("frame", rgb16), ("dark", dark16)):
        want = keras_out(model, img.astype(np.float32) / 65535)
        np.testing.assert_allclose(np.load(tmp_path / "out" / f"{name}.npy"), want, atol=1e-5, rtol=0)
    assert runner.main([*args, "--out", str(tmp_path / "both"), "--no-skip"]) == 0
    assert "(ran" not in capsys.readouterr().out
    np.testing.assert_allclose(np.load(tmp_path / "both" / "dark.npy"), np.load(tmp_path / "out" / "dark.npy"), atol=1e-6, rtol=0)
    assert runner.main([str(report.path), str(tmp_path / "missing.png"), "--out", str(tmp_path / "out")]) == 2


def test_global_stage_dual_exports_with_context_and_skips(tmp_path):
    """rgb + context inputs: every signature takes both; the skip path equals Keras with the frame's context."""
    from revisp_tf.global_stage.context import frame_context
    from revisp_tf.models import build_reverse_isp
    from tests.lively import enliven

    model = enliven(build_reverse_isp("dual", base_filters=4, depth=2, global_stage="upi"))
    rgb = generated_frame(64, 96, seed=9)
    report = export_tflite(inference_form(model), tmp_path / "g.tflite", size=(64, 96), check_data=[rgb])
    interpreter = Interpreter(model_path=str(report.path))
    signatures = interpreter.get_signature_list()
    assert all({"rgb", "context"} <= set(signatures[name]["inputs"]) for name in report.signatures)
    want = model.predict_on_batch([rgb[None], frame_context(rgb)[None]])[0]
    for image, nets in ((rgb, ("oe", "noe")), (rgb * 0.5, ("noe",))):
        got, ran = run_skipping(interpreter, image)
        assert ran == nets
        np.testing.assert_allclose(got, model.predict_on_batch([image[None], frame_context(image)[None]])[0], atol=1e-5)
    assert report.max_abs_error <= 1e-5 and report.skip_max_abs_error <= 1e-5 and want.std() > 0.05


def test_global_stage_int8_calibrates_each_input_by_name(tmp_path):
    """int8 of an rgb + context model: calibration feeds each input its own data (the graph orders them by name).

    Fed as a list in signature order, the converter gave `context` the RGB and failed ("[1,64,96,0] and [3]
    are not broadcastable"). By default the global stage's ops stay float32 (`float_parts=("global",)`).
    """
    from revisp_tf.global_stage.context import frame_context
    from revisp_tf.models import build_reverse_isp
    from tests.lively import enliven

    keras.utils.set_random_seed(0)
    model = enliven(build_reverse_isp("single", base_filters=4, depth=2, global_stage="upi"))
    images = [generated_frame(64, 96, seed=s) for s in range(4)]
    contexts = [frame_context(img) for img in images]
    want = model.predict_on_batch([images[0][None], contexts[0][None]])[0]
    assert want.std() > 0.1
    errors = {}
    for parts in ((), None):  # None: the default, the global stage in float32
        report = export_tflite(inference_form(model), tmp_path / f"g8{parts is None}.tflite", quantize="int8", size=(64, 96),
                               representative_data=images, representative_contexts=contexts, check_data=images[:2],
                               float_parts=parts)
        interpreter = Interpreter(model_path=str(report.path))
        errors[parts] = np.abs(run(interpreter, images[0], contexts[0]) - want)
        details = interpreter.get_tensor_details()
        curves = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"
                  and "global_curves" in details[op["outputs"][0]]["name"]]
        assert len(curves) == 1 and (details[curves[0]["inputs"][1]]["dtype"] == np.float32) == (parts is None)
    assert errors[()].mean() < 0.03 and errors[None].mean() < 0.03  # a few 8-bit steps, not a scrambled input
    from revisp_tf.global_stage.context import CONTEXT_CHANNELS

    with pytest.raises(ValueError, match=f"one \\(H, W, {CONTEXT_CHANNELS}\\) context per calibration image"):
        export_tflite(model, tmp_path / "bad.tflite", quantize="int8", size=(64, 96), representative_data=images,
                      representative_contexts=contexts[:1])
    with pytest.raises(ValueError, match="float_parts"):
        export_tflite(model, tmp_path / "bad.tflite", quantize="fp16", float_parts=("global",))


def _weight_dtypes(interpreter, layer: str) -> set:
    """dtypes of the filters of the convolutions of Keras layer `layer` (by the converted graph's tensor names)."""
    details = interpreter.get_tensor_details()
    return {details[op["inputs"][1]]["dtype"] for op in interpreter._get_ops_details()
            if op["op_name"] == "CONV_2D" and f"/{layer}" in details[op["outputs"][0]]["name"]}


def test_int8_keeps_the_head_and_the_output_path_in_float_by_default(tmp_path):
    """A plain net's int8 default: the head conv, crop, clamp and mosaic in float32 (FLOAT_PARTS["head"]).

    In trained P9 nets the head's pre-clamp output was calibrated 14-55 units wide for outputs within
    [0, 1]: quantized, the output lies on 256 levels of that range (steps of 0.06-0.2) and int8 lost up
    to 1.2 dB. Here a head gain of 10 widens the pre-clamp range to about 3x the output's.
    """
    model = inference_form(lively_model("single", gain=10.0))
    images = calibration_images((64, 96), count=4)
    want = model.predict_on_batch(images[0][None])[0]
    out, errors = {}, {}
    for parts in ((), None):  # None: the default
        report = export_tflite(model, tmp_path / f"h{parts is None}.tflite", quantize="int8", size=(64, 96),
                               representative_data=images, check_data=images[:2], float_parts=parts)
        interpreter = Interpreter(model_path=str(report.path))
        assert _weight_dtypes(interpreter, "head") == {np.float32 if parts is None else np.int8}
        assert _weight_dtypes(interpreter, "dec1a_conv") == {np.int8}
        out[parts], errors[parts] = run(interpreter, images[0]), report.mean_abs_error
    assert len(np.unique(out[()])) <= 256 < len(np.unique(out[None]))  # one dequantized int8 tensor, or float
    assert 0.0 < (want == 1.0).mean() < 0.5 and errors[None] < 0.7 * errors[()]


def test_int8_float_parts_a_model_lacks_is_an_error(tmp_path):
    model = lively_model("single")
    with pytest.raises(ValueError, match="no 'global' part"):
        export_tflite(model, tmp_path / "g.tflite", quantize="int8", size=(32, 32), float_parts=("global",))
    assert not (tmp_path / "g.tflite").exists()


def test_int8_keeps_the_dual_fusion_in_float_by_default(tmp_path):
    """A dual net's int8 default: the fusion (mask * oe + (1 - mask) * noe) and the mosaic after it in float32.

    With the heads float but the fusion's ADD int8, the output was still one dequantized int8 tensor
    (256 levels); both nets' outputs now reach the graph's output in float.
    """
    model = inference_form(lively_model("dual", gain=1.0))  # about half the outputs off the clamp's bounds
    images = [generated_frame(64, 96, seed=s) for s in range(4)]
    want = model.predict_on_batch(images[0][None])[0]
    out, fusion_dtypes = {}, {}
    for parts in ((), None):  # None: the default
        report = export_tflite(model, tmp_path / f"f{parts is None}.tflite", quantize="int8", size=(64, 96),
                               representative_data=images, check_data=images[:2], float_parts=parts)
        interpreter = Interpreter(model_path=str(report.path))
        details = interpreter.get_tensor_details()
        fusion = [op for op in interpreter._get_ops_details() if "/fusion" in details[op["outputs"][0]]["name"]]
        assert {op["op_name"] for op in fusion} >= {"MUL", "ADD"}
        fusion_dtypes[parts] = {details[i]["dtype"] for op in fusion for i in (*op["inputs"], *op["outputs"])
                                if i >= 0 and details[i]["shape"].size == 4}
        out[parts] = run(interpreter, images[0])
    assert fusion_dtypes[None] == {np.float32} and np.int8 in fusion_dtypes[()]
    # measured: 2,575 levels (Keras 3,263); all int8 180, and 220 with the heads float but the fusion's ADD int8
    assert len(np.unique(out[()])) <= 256 and len(np.unique(out[None])) > 2000
    assert 0.0 < (images[0].min(-1) == 1.0).mean() < 0.5  # both nets weigh in: a blown-out block and the rest
    assert np.abs(out[None] - want).max() < 0.03  # a few 8-bit steps of the nets


def test_exposure_bracket_matches_a_numpy_reference():
    """Each stop: Brooks et al.'s inverse S-curve and gamma 2.2, x 2**stop, clip to [0, 1], then forward."""
    from revisp_tf.export.calibration import CALIBRATION_STOPS, exposure_bracket

    img = np.linspace(0.0, 1.0, 2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)
    lin = np.maximum(0.5 - np.sin(np.arcsin(1.0 - 2.0 * img.astype(np.float64)) / 3.0), 1e-8) ** 2.2
    out = exposure_bracket([img])
    assert len(out) == 1 + len(CALIBRATION_STOPS) and np.array_equal(out[0], img)
    for got, stop in zip(out[1:], CALIBRATION_STOPS):
        x = np.clip(lin * 2.0**stop, 0.0, 1.0) ** (1 / 2.2)
        np.testing.assert_allclose(got, 3 * x**2 - 2 * x**3, atol=2e-6)
    assert out[-1][1, 5, 2] == 1.0 and 0.49 < out[-1][0, 2, 0] < 0.50  # +2 stops: highlights clip; 0.171 -> 0.492
    assert len(exposure_bracket([img], ())) == 1


def test_int8_calibrates_a_dual_net_on_the_exposure_bracket(tmp_path):
    """By default a plain dual net's calibration also sees +-1, +-2 stops; a single net's does not.

    Seen in the calibrated range of the nets' input (rgb and mask, one int8 tensor): 255 steps span
    the brightest calibration value, 0.4 for these dim images, 0.908 for them 2 stops brighter.
    """
    from revisp_tf.export.calibration import exposure_bracket

    images = [generated_frame(64, 96, seed=s) * 0.4 for s in range(3)]
    brightest = max(float(img.max()) for img in exposure_bracket(images))
    assert 0.90 < brightest < 0.92
    for variant, want in (("single", 0.4), ("dual", brightest)):
        report = export_tflite(inference_form(lively_model(variant)), tmp_path / f"{variant}.tflite", quantize="int8",
                               size=(64, 96), representative_data=images)
        interpreter = Interpreter(model_path=str(report.path))
        details = interpreter.get_tensor_details()
        first = next(op for op in interpreter._get_ops_details() if op["op_name"] == "QUANTIZE")
        assert "rgb_mask" in details[first["inputs"][0]]["name"]
        scale, zero = details[first["outputs"][0]]["quantization"]
        assert zero == -128 and 255 * scale == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="only int8 calibrates"):
        export_tflite(lively_model("dual"), tmp_path / "bad.tflite", quantize="fp16", calibration_stops=(1.0,))
