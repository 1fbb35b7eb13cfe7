"""scripts/gpu_check.py: its dry run (every code path of the GPU run, on two logical CPUs) passes its checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), *args], env=ENV, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # about 75 s of CPU: 5 traced training steps (one compiled by XLA) and 2 inferences
def test_dry_run_checks_every_precision_and_mirrored():
    out = _run("--dry-run")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    checked = {line.strip().split("  ")[0]: line for line in out.stdout.splitlines() if line.endswith("  OK")}
    assert set(checked) == {"fp32 on /cpu:1", "fp32 + XLA on /cpu:1", "mixed on /cpu:1", "fp32 Mirrored x2"}, out.stdout
    assert "loss scale" in checked["mixed on /cpu:1"]  # dynamic loss scaling ran
    timed = [line.split()[0:2] for line in out.stdout.splitlines() if "steps/s" in line]
    assert len(timed) == 4 and all(words[0] == "train" for words in timed)  # section 2's three, section 3's one
    assert sum("ms per 64 px patch" in line for line in out.stdout.splitlines()) == 2  # inference fp32, mixed
    assert out.stdout.rstrip().endswith("all checks passed")


def test_without_a_gpu_it_says_so_in_one_line():
    out = _run(timeout=120)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("no NVIDIA GPU visible to TensorFlow") and "--dry-run" in lines[-1]
