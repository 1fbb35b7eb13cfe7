"""`revisp-tf export --float-parts` and `--exposure-bracket`: what stays float32 in an int8 file, what the
calibration sees, and misuse as one error line."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from click.testing import CliRunner

from revisp_tf.cli import main
from tests.lively import lively_model


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def conv_weight_dtypes(path) -> dict:
    """Keras layer name -> dtype of the filters of its CONV_2D ops in the .tflite file."""
    interpreter = Interpreter(model_path=str(path))
    details = interpreter.get_tensor_details()
    dtypes = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "CONV_2D":
            name = details[op["outputs"][0]]["name"]
            layer = next(c for piece in name.split(";") for c in piece.split("/") if c.endswith(("_conv_1", "head_1")))
            dtypes.setdefault(layer.removesuffix("_1"), set()).add(details[op["inputs"][1]]["dtype"])
    return dtypes


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.keras"
    lively_model("single", depth=2).save(path)
    return path


def test_float_parts_choose_the_float32_convs_and_move_the_numbers(model_file, tmp_path):
    def export(name, *parts):
        out = tmp_path / f"{name}.tflite"
        result = run("export", "--model", model_file, "--out", out, "--size", 32, 32, "--quantize", "int8",
                     *[a for p in parts for a in ("--float-parts", p)])
        assert result.exit_code == 0, result.output
        return out

    files = {"default": export("default"), "none": export("none", "none"), "top": export("top", "top"),
             "head+top": export("ht", "head", "top")}
    dtypes = {name: conv_weight_dtypes(path) for name, path in files.items()}
    assert dtypes["default"]["head"] == {np.float32} and dtypes["default"]["dec1a_conv"] == {np.int8}
    assert dtypes["none"]["head"] == {np.int8}
    assert dtypes["top"]["dec1a_conv"] == dtypes["top"]["dec1b_conv"] == dtypes["top"]["head"] == {np.float32}
    assert dtypes["top"]["enc1a_conv"] == {np.int8} and dtypes["head+top"] == dtypes["top"]
    rgb = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    outputs = {name: Interpreter(model_path=str(path)).get_signature_runner("reverse_isp")(rgb=rgb)["bayer"]
               for name, path in files.items()}
    assert not np.array_equal(outputs["default"], outputs["none"]) and not np.array_equal(outputs["top"], outputs["default"])
    np.testing.assert_array_equal(outputs["head+top"], outputs["top"])


@pytest.mark.parametrize("args, message", [
    (("--quantize", "fp16", "--float-parts", "head"), "error: --float-parts: only with --quantize int8 (got --quantize fp16)"),
    (("--float-parts", "head"), "error: --float-parts: only with --quantize int8 (got --quantize none)"),
    (("--quantize", "int8", "--float-parts", "none", "--float-parts", "top"), "error: --float-parts: none cannot be combined with top"),
    (("--quantize", "fp16", "--no-exposure-bracket"), "error: --no-exposure-bracket: only with --quantize int8 (got --quantize fp16)"),
    (("--quantize", "int8", "--float-parts", "global"),
     "error: float_parts: this model has no 'global' part (no layer named global_curves, frame_gains, local_context)"),
])
def test_float_parts_misuse_is_one_line_and_no_file(model_file, tmp_path, args, message):
    out = tmp_path / "m.tflite"
    result = run("export", "--model", model_file, "--out", out, "--size", 32, 32, *args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert [ln for ln in result.stderr.splitlines() if ln.strip()] == [message]
    assert list(tmp_path.iterdir()) == []


def input_range(path) -> float:
    """What 255 int8 steps of the nets' first quantized input (rgb and mask) span: the calibration's brightest value."""
    interpreter = Interpreter(model_path=str(path))
    details = interpreter.get_tensor_details()
    first = next(op for op in interpreter._get_ops_details() if op["op_name"] == "QUANTIZE")
    scale, zero = details[first["outputs"][0]]["quantization"]
    assert zero == -128
    return 255 * scale


def test_exposure_bracket_flag_sets_what_the_calibration_sees(tmp_path):
    """Dim calibration images (max 0.4): the bracket's +2 stops widen the range to about 0.91; the flag overrides the default."""
    import cv2

    from revisp_tf.export.calibration import exposure_bracket
    from tests.lively import lively_model

    rng = np.random.default_rng(0)
    calib = tmp_path / "calib"
    calib.mkdir()
    images = [cv2.GaussianBlur(rng.random((32, 32, 3)).astype(np.float32), (0, 0), 2) for _ in range(3)]
    images = [0.4 * (x - x.min()) / (x.max() - x.min()) for x in images]
    for k, img in enumerate(images):
        cv2.imwrite(str(calib / f"{k}.png"), np.round(img[..., ::-1] * 255).astype(np.uint8))
    stored = [cv2.imread(str(calib / f"{k}.png"))[..., ::-1].astype(np.float32) / 255 for k in range(3)]
    plain, bracketed = max(float(x.max()) for x in stored), max(float(x.max()) for x in exposure_bracket(stored))
    assert plain == pytest.approx(0.4, abs=1 / 255) and bracketed > 0.85
    models = {v: tmp_path / f"{v}.keras" for v in ("single", "dual")}
    for v, path in models.items():
        lively_model(v, depth=2).save(path)
    for variant, flag, want in (("single", (), plain), ("single", ("--exposure-bracket",), bracketed),
                                ("dual", (), bracketed), ("dual", ("--no-exposure-bracket",), plain)):
        out = tmp_path / f"{variant}{''.join(flag)}.tflite"
        result = run("export", "--model", models[variant], "--out", out, "--size", 32, 32, "--quantize", "int8",
                     "--calibration", calib, *flag)
        assert result.exit_code == 0, result.output
        assert input_range(out) == pytest.approx(want, rel=1e-5), (variant, flag)
