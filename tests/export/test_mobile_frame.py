"""The phone-side frame code (mobile/frame.py, mobile/run_litert.py; NumPy + LiteRT, no TensorFlow).

Checked against the library it mirrors: the frame context of `revisp_tf.models.global_stage`, and
Keras on a real S7 frame (scene 78 stitched, 7.5 % of its pixels overexposed): the LiteRT runner
skipping the OE net per tile equals Keras running both nets on every tile. (The runner tiles
with the library's own `revisp_tf.tiling`.)
"""

import importlib.util
import sys

import numpy as np
import pytest

from revisp_tf import inference
from revisp_tf.models.global_stage import context_window, frame_summary
from tests.conftest import REPO


def _module(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "mobile" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run_litert = _module("run_litert")
mobile_frame = run_litert.frame_lib  # mobile/frame.py, as the runner imports it


@pytest.fixture(scope="module")
def scene78(realdata):
    """The 3024x4032 S7 frame of scene 78, stitched from its 48 patches, as uint8 samples."""
    import cv2

    paths = [realdata / "aim22_s7_rgb" / f"78_{k}.jpg" for k in range(48)]
    return inference.stitch_patches([cv2.imread(str(p))[..., ::-1] for p in paths])


def test_frame_context_equals_the_library_on_a_real_frame(scene78):
    want, got = frame_summary(scene78), mobile_frame.frame_summary(scene78)
    assert got.shape == want.shape == (3024, 4032)
    np.testing.assert_allclose(got.grid, want.grid, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.stats, want.stats, atol=1e-6, rtol=0)
    assert want.grid.std() > 0.05  # a real frame's blurred view is not flat
    for y0, x0, h, w in ((0, 0, 496, 512), (1000, 2002, 64, 96), (2528, 3520, 496, 512)):
        np.testing.assert_allclose(mobile_frame.context_window(got, y0, x0, h, w), context_window(want, y0, x0, h, w),
                                   atol=1e-6, rtol=0)
    # uint8 samples and the same frame as float give the same summary
    as_float = mobile_frame.frame_summary(scene78[:600, :800].astype(np.float32) / 255)
    np.testing.assert_allclose(as_float.grid, mobile_frame.frame_summary(scene78[:600, :800]).grid, atol=1e-7, rtol=0)


@pytest.mark.slow
def test_skip_oe_runner_equals_keras_on_a_real_frame(scene78, tmp_path):
    """A global-stage dual model over the whole frame: context once per frame, OE net only on tiles that need it."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from revisp_tf.export import export_tflite
    from revisp_tf.models import build_reverse_isp
    from revisp_tf.models.inference_form import inference_form
    from tests.lively import enliven

    keras.utils.set_random_seed(0)
    model = enliven(build_reverse_isp("dual", base_filters=4, depth=4, global_stage="upi"))
    report = export_tflite(inference_form(model), tmp_path / "g.tflite", size=None, check_data=[scene78[:504, :504] / 255])
    assert report.max_abs_error <= 1e-5
    summary = frame_summary(scene78)
    keras_runner = inference.TiledInference(model, skip_oe=False)  # both nets on every tile: the full graph
    want = keras_runner(scene78, context=lambda y0, x0, h, w: context_window(summary, y0, x0, h, w))
    plan = inference.TiledInference(model, skip_oe=True).plan(scene78, context=lambda *a: context_window(summary, *a))

    interpreter = run_litert.load(report.path, 2)
    rgb = scene78.astype(np.float32) / 255
    got, ran = run_litert.run_frame(interpreter, rgb)
    assert ran.grid == (7, 9) and ran.extent == (496, 512)
    assert ran.ran == {"oe+noe": plan.count("both"), "noe": plan.count("noe"), "oe": plan.count("oe")}
    assert 0 < ran.ran["oe+noe"] < 63 and ran.ran["noe"] > 0  # some tiles need the OE net, most do not
    assert want.std() > 0.1
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # the runner's own full graph per tile agrees too
    full, ran_full = run_litert.run_frame(Interpreter(model_path=str(report.path), num_threads=2), rgb, skip=False)
    assert ran_full.ran == {"reverse_isp": 63}
    np.testing.assert_allclose(got, full, atol=1e-6, rtol=0)
