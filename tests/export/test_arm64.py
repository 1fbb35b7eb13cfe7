"""mobile/run_litert.py on ARM64 (LiteRT's aarch64 wheel under qemu) equals it on x86 and Keras.

Runs only where the arm64 root of mobile/arm64/build_root.sh exists (REVISP_ARM64_ROOT, default
~/.cache/revisp-tf/arm64-root) and qemu-aarch64-static is installed; skips otherwise. A tiny
global-stage dual model on a 96x128 crop of a real S7 patch keeps it to seconds under emulation.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, read_jpeg_rgb

ROOT = Path(os.environ.get("REVISP_ARM64_ROOT", Path.home() / ".cache" / "revisp-tf" / "arm64-root"))


@pytest.mark.slow
def test_arm64_runner_equals_x86_and_keras(realdata, tmp_path):
    if not (ROOT / ".revisp-ready").is_file() or shutil.which("qemu-aarch64-static") is None:
        pytest.skip(f"no arm64 root at {ROOT} or no qemu-aarch64-static (build it: sudo mobile/arm64/build_root.sh)")
    import keras

    from revisp_tf.export.convert import export_tflite
    from revisp_tf.global_stage.context import frame_context
    from revisp_tf.models import build_reverse_isp
    from revisp_tf.models.inference_form import inference_form
    from tests.lively import enliven

    keras.utils.set_random_seed(0)
    model = enliven(build_reverse_isp("dual", base_filters=4, depth=2, global_stage="upi"))
    rgb = np.ascontiguousarray(read_jpeg_rgb(realdata / "aim22_s7_rgb" / "78_30.jpg")[0:96, 128:256])
    np.save(tmp_path / "crop.npy", rgb)
    report = export_tflite(inference_form(model), tmp_path / "m.tflite", size=None, check_data=[rgb], check_sizes=())
    want = model.predict_on_batch([rgb[None], frame_context(rgb)[None]])[0]
    outs = {}
    for name, prefix in (("x86", [sys.executable]), ("arm64", ["qemu-aarch64-static", "-cpu", "cortex-a76", "-L", str(ROOT),
                                                         str(ROOT / "usr" / "bin" / "python3")])):
        done = subprocess.run([*prefix, str(REPO / "mobile" / "run_litert.py"), str(report.path), str(tmp_path / "crop.npy"),
                               "--out", str(tmp_path / name), "--num-threads", "1"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "(ran oe and noe)" in done.stdout  # the crop has overexposed and normal pixels
        outs[name] = np.load(tmp_path / name / "crop.npy")
    assert want.std() > 0.05
    np.testing.assert_allclose(outs["arm64"], outs["x86"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(outs["arm64"], want, atol=1e-5, rtol=0)
