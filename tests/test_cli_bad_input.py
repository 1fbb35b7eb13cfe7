"""Bad input through the CLI, as a new user meets it: one clear line, non-zero exit, no traceback, nothing half-written.

Each case of issue 12's corpus that failed has its own test here; the I/O checks themselves
are tested against their own references in tests/io/test_images.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from revisp_tf.cli import main
from tests.mounts import full_folder, read_only_folder

# Changes to revisp_tf/train/config.py that these cases need are with the trainer's owner (issue 12).
def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def one_error_line(result) -> str:
    """The one line a failing command prints (exit code 2, no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _gradient(h=48, w=64) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.stack([4 * x, 5 * y, 2 * (x + y)], -1).astype(np.uint8)


@pytest.fixture
def good_png(tmp_path) -> Path:
    path = tmp_path / "good.png"
    assert cv2.imwrite(str(path), _gradient())
    return path


@pytest.fixture
def corrupt_jpeg(tmp_path) -> Path:
    """Garbage in mid-scan, end marker kept (OpenCV decodes it; libjpeg warns 'Corrupt JPEG data')."""
    ok, enc = cv2.imencode(".jpg", _gradient(64, 96))
    data = bytearray(enc.tobytes())
    i = data.find(b"\xff\xda")
    start = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    mid = (start + len(data) - 2) // 2
    data[mid : mid + 40] = np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------------------ hard failures


def test_infer_refuses_a_corrupt_jpeg(corrupt_jpeg, tmp_path):
    line = one_error_line(run("infer", corrupt_jpeg, "--out", tmp_path / "out"))
    assert line == f"error: {corrupt_jpeg}: corrupt JPEG data (libjpeg: Corrupt JPEG data: premature end of data segment)"
    assert not (tmp_path / "out").exists()


def test_infer_refuses_a_huge_png_header(tmp_path):
    from tests.io.test_images import _png_claiming

    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(60000, 60000))
    line = one_error_line(run("infer", path, "--out", tmp_path / "out"))
    assert line == f"error: {path}: PNG is 60000x60000 px (3600 MP), above the limit of 64 MP (revisp-tf --max-megapixels raises it)"


def test_image_size_limit_option(good_png, tmp_path):
    line = one_error_line(run("--max-megapixels", 0.003, "infer", good_png, "--out", tmp_path / "out"))
    assert "PNG is 64x48 px (0.003072 MP), above the limit of 0.003 MP" in line
    ok = run("--max-megapixels", 0.004, "infer", good_png, "--out", tmp_path / "out")
    assert ok.exit_code == 0, ok.output
    assert np.load(tmp_path / "out" / "good.npy").shape == (24, 32, 4)


def test_infer_folder_with_one_bad_image_writes_nothing(good_png, corrupt_jpeg, tmp_path):
    line = one_error_line(run("infer", tmp_path, "--out", tmp_path / "out"))
    assert str(corrupt_jpeg) in line
    assert not (tmp_path / "out").exists()


def test_make_pairs_patch_zero(tmp_path):
    line = one_error_line(run("make-pairs", "--synthetic", "--patch", 0, "--out", tmp_path / "syn"))
    assert line == "error: patch: expected an even size >= 2 (whole 2x2 CFA tiles), got 0"
    mosaic = tmp_path / "m.png"
    cv2.imwrite(str(mosaic), np.zeros((8, 8), np.uint16))
    line = one_error_line(run("make-pairs", mosaic, "--cfa", "RGGB", "--black", 0, "--white", 65535, "--patch", 0, "--out", tmp_path / "p"))
    assert line == "error: patch: expected a positive even number of pixels (whole 2x2 CFA tiles), got 0"


def _small_frame_lines(result, source, h, w):
    assert result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit)), result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith(("W", "I"))]
    assert lines[-1] == f"error: no pairs written to {source.parent / 'pairs'}: every file was skipped (a smaller --patch fits small frames)"
    assert any(ln.startswith(f"skipped {source}: {h}x{w} after CFA alignment is smaller than one 504x504 patch") for ln in lines), lines


def test_make_pairs_frame_smaller_than_the_patch(tmp_path):
    mosaic = tmp_path / "small.png"
    cv2.imwrite(str(mosaic), np.random.default_rng(0).integers(0, 1024, (64, 80)).astype(np.uint16))
    result = run("make-pairs", mosaic, "--cfa", "RGGB", "--black", 0, "--white", 1023, "--out", tmp_path / "pairs")
    _small_frame_lines(result, mosaic, 64, 80)


def test_make_pairs_real_n900_png_at_the_default_patch(realdata, tmp_path):
    source = tmp_path / "bayer_small.png"
    source.write_bytes((realdata / "raw" / "nokia_n900" / "bayer_small.png").read_bytes())
    result = run("make-pairs", source, "--cfa", "GRBG", "--black", 25, "--white", 1023, "--out", tmp_path / "pairs")
    _small_frame_lines(result, source, 344, 254)


def test_set_with_a_yaml_error_names_the_key(tmp_path):
    line = one_error_line(run("train", "--config", "training/configs/demo.yaml", "--set", "model.depth=[", "--run-dir", tmp_path / "r"))
    assert "model.depth" in line


def test_set_with_an_index_out_of_range_names_the_key(tmp_path):
    line = one_error_line(run("train", "--config", "training/configs/demo.yaml", "--set", "optim.phases.5=1", "--run-dir", tmp_path / "r"))
    assert "optim.phases.5" in line


# ------------------------------------------------------------------------------ soft failures


def test_binary_config_names_the_file(tmp_path):
    config = tmp_path / "weights.bin"
    config.write_bytes(bytes(range(256)) * 4)
    line = one_error_line(run("train", "--config", config, "--run-dir", tmp_path / "r"))
    assert str(config) in line and "codec" not in line


def test_set_with_a_bad_index_names_the_key(tmp_path):
    line = one_error_line(run("train", "--config", "training/configs/demo.yaml", "--set", "optim.phases.x=1", "--run-dir", tmp_path / "r"))
    assert "optim.phases.x" in line and "invalid literal" not in line


def test_infer_into_a_read_only_folder_names_the_output_before_any_work(good_png, tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        # A model that does not exist: the output is checked first, so its error is the one printed.
        line = one_error_line(run("infer", good_png, "--model", tmp_path / "missing.keras", "--out", ro))
        assert line.startswith(f"error: cannot write into {ro}: ")


def test_export_into_a_read_only_folder_names_the_output_before_any_work(tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        line = one_error_line(run("export", "--model", tmp_path / "missing.keras", "--out", ro / "m.tflite"))
        assert line.startswith(f"error: cannot write into {ro}: ")


def test_eval_report_into_a_read_only_folder_before_any_work(tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        line = one_error_line(run("eval", "--no-model", "--data", tmp_path / "nothing", "--out", ro / "report.json"))
        assert line.startswith(f"error: cannot write into {ro}: ")


# ------------------------------------------------------------------------------ faults


def test_infer_on_a_full_disk_names_the_output(good_png, tmp_path):
    with full_folder(tmp_path / "full", size_kb=4) as full:
        result = run("infer", good_png, "--out", full)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        # After the progress bars of the work done, one line naming the file asked for.
        assert result.stderr.splitlines()[-1] == f"error: cannot write {full / 'good.npy'}: No space left on device"
        assert list(full.iterdir()) == []


def test_stale_temporary_of_a_killed_infer_is_removed_by_the_next(good_png, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".good.{int(dead.stdout)}.0badc0de.tmp.npy"
    stale.write_bytes(b"half a RAW")
    assert run("infer", good_png, "--out", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["good.npy"]


# ------------------------------------------------------------------------------ TensorFlow's start-up log


def _cli(*args, env=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "revisp_tf.cli", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_a_failing_command_prints_one_line_and_verbose_brings_the_log_back(corrupt_jpeg, tmp_path):
    quiet = _cli("infer", corrupt_jpeg, "--out", tmp_path / "out")
    assert quiet.returncode == 2
    assert quiet.stderr.splitlines() == [f"error: {corrupt_jpeg}: corrupt JPEG data (libjpeg: Corrupt JPEG data: premature end of data segment)"]
    loud = _cli("--verbose", "infer", corrupt_jpeg, "--out", tmp_path / "out")
    assert loud.returncode == 2 and loud.stderr.splitlines()[-1] == quiet.stderr.splitlines()[0]
    assert len(loud.stderr.splitlines()) > 1  # TensorFlow's own start-up lines


@pytest.mark.slow
def test_export_on_a_full_disk_names_the_output(tmp_path):
    from revisp_tf.models import build_reverse_isp

    model = tmp_path / "m.keras"
    build_reverse_isp("single", base_filters=2, depth=2).save(model)
    with full_folder(tmp_path / "full", size_kb=4) as full:
        result = run("export", "--model", model, "--out", full / "m.tflite", "--size", 32, 32)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert result.stderr.splitlines()[-1] == f"error: cannot write {full / 'm.tflite'}: No space left on device"
        assert list(full.iterdir()) == []
