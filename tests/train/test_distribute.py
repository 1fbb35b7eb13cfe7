import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


def test_mirrored_equals_one_device_for_the_same_global_batch():
    out = subprocess.run([sys.executable, str(REPO / "tests/train/_mirrored_check.py")], env=ENV, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["replicas"] == 2
    assert r["loss_mirrored"] == pytest.approx(r["loss_one"], rel=1e-5)
    # float32 with synchronised BatchNorm (variance from all-reduced moments): agreement to ~1e-3
    # of the largest gradient; a per-replica batch mean (2x) or unsynchronised statistics differ by far more.
    assert r["grad_max_abs_diff"] <= 5e-3 * r["grad_max_abs"]
    # The dual nets in turn under MirroredStrategy: the joint mirrored step's gradients (synchronised BatchNorm included).
    assert r["loss_mirrored_sequential"] == pytest.approx(r["loss_mirrored"], rel=1e-6)
    assert r["grad_sequential_max_abs_diff"] <= 1e-6 * r["grad_max_abs"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_two_local_processes(tiny_pairs, tmp_path):
    ports = [str(_free_port()), str(_free_port())]
    procs = [
        subprocess.Popen([sys.executable, str(REPO / "tests/train/_worker.py"), str(i), *ports, str(tiny_pairs), str(tmp_path / "run")],
                         env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=420)[0])
    finally:
        for p in procs:  # bounded: never leave a worker behind
            p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outputs)
    histories = [json.loads(o.split("HISTORY ", 1)[1].splitlines()[0]) for o in outputs]
    assert histories[0][-1]["step"] > 0
    assert histories[0][-1]["psnr"] == pytest.approx(histories[1][-1]["psnr"], abs=1e-4)  # same weights
    assert (tmp_path / "run" / "DONE").exists()
