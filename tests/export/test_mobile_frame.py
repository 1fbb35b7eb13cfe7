"""The phone-side frame loop (mobile/run_litert.py; NumPy + LiteRT, no TensorFlow) against Keras on
a real S7 frame (scene 78 stitched, 7.5 % of its pixels overexposed): the LiteRT runner skipping
the OE net per tile equals Keras running both nets on every tile. (The runner takes the frame
context and the tiling from the library's NumPy-only `revisp_tf.global_stage.context` and `revisp_tf.infer.tiling`.)
"""

import importlib.util
import sys

import numpy as np
import pytest

from revisp_tf.global_stage.context import context_window, frame_summary
from revisp_tf.infer import aim22, tiled
from tests.conftest import REPO


def _module(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "mobile" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run_litert = _module("run_litert")


@pytest.fixture(scope="module")
def scene78(realdata):
    """The 3024x4032 S7 frame of scene 78, stitched from its 48 patches, as uint8 samples."""
    import cv2

    paths = [realdata / "aim22_s7_rgb" / f"78_{k}.jpg" for k in range(48)]
    return aim22.stitch_patches([cv2.imread(str(p))[..., ::-1] for p in paths])


@pytest.mark.slow
def test_skip_oe_runner_equals_keras_on_a_real_frame(scene78, tmp_path):
    """A global-stage dual model over the whole frame: context once per frame, OE net only on tiles that need it."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from revisp_tf.export.convert import export_tflite
    from revisp_tf.models import build_reverse_isp
    from revisp_tf.models.inference_form import inference_form
    from tests.lively import enliven

    keras.utils.set_random_seed(0)
    model = enliven(build_reverse_isp("dual", base_filters=4, depth=4, global_stage="upi"))
    report = export_tflite(inference_form(model), tmp_path / "g.tflite", size=None, check_data=[scene78[:504, :504] / 255])
    assert report.max_abs_error <= 1e-5
    summary = frame_summary(scene78)
    keras_runner = tiled.TiledInference(model, skip_oe=False)  # both nets on every tile: the full graph
    want = keras_runner(scene78, context=lambda y0, x0, h, w: context_window(summary, y0, x0, h, w))
    plan = tiled.TiledInference(model, skip_oe=True).plan(scene78, context=lambda *a: context_window(summary, *a))

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
