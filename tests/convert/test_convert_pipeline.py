"""`revisp-tf convert` (Apache Beam's DirectRunner, two worker processes) against `revisp-tf infer`, on `conftest.dataset`."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -e '.[test,beam]' runs these tests)")

from revisp_tf.convert.tfrecord import read_records  # noqa: E402
from revisp_tf.isp.sensor import SAMSUNG_S7  # noqa: E402
from revisp_tf.weights import sha256  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.convert.conftest import BEAM, COUNT, TILING, cli  # noqa: E402
from tests.convert.mirrorfs import PREFIX  # noqa: E402  (registers mirror:// with Beam)

def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _check_manifest(entries, dataset, outputs):
    """One entry per good input, each with its bytes' sha256, its output and the model's sha256."""
    assert sorted(e["input"] for e in entries) == sorted(map(str, dataset.good))
    model = sha256(dataset.model)
    for e in entries:
        assert e["sha256"] == hashlib.sha256(Path(e["input"]).read_bytes()).hexdigest()
        assert e["model_sha256"] == model and e["metadata"] == "none" and e["seconds"] > 0
        assert e["output"] in outputs


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "dng"])
def test_convert_writes_what_infer_writes(dataset, fmt, tmp_path):
    out = tmp_path / "out"
    result = cli("convert", *dataset.inputs, "--out", out, "--model", dataset.model, "--format", fmt, *TILING, *BEAM)
    assert result.exit_code == 2, result.output  # the number of inputs that failed
    for path in dataset.good:
        name = path.with_suffix(f".{fmt}").name
        assert (out / name).read_bytes() == (dataset.infer[fmt] / name).read_bytes(), name
    assert sorted((out / "dead_letter.txt").read_text().splitlines()) == dataset.messages
    assert "failed: " + dataset.messages[0] in result.stderr
    _check_manifest(_manifest(out), dataset, {p.with_suffix(f".{fmt}").name for p in dataset.good})
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".convert", "dead_letter.txt", "manifest.jsonl"] + [p.with_suffix(f".{fmt}").name for p in dataset.good]
    )


def _wait_for_outputs(out: Path, proc, count: int, timeout=600.0) -> None:
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if len(list(out.glob("*.npy"))) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"no output within {timeout} s (exit {proc.poll()})")


@pytest.mark.slow
def test_a_killed_run_resumes_without_writing_anything_twice(dataset, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "revisp_tf.cli", "convert", *map(str, dataset.inputs), "--out", str(out),
               "--model", str(dataset.model), *TILING, *BEAM]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_outputs(out, first, 5)  # both workers busy: one output just written, others on their way
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the launcher and its Beam workers
        first.wait()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.npy")}
    assert 0 < len(before) < COUNT, f"{len(before)} outputs when the run was killed"
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"{COUNT - len(before)} converted, 2 failed, {len(before)} skipped" in second.stdout, second.stdout
    for name, stamp in before.items():  # committed before the kill: not written again
        assert ((out / name).stat().st_ino, (out / name).stat().st_mtime_ns) == stamp, name
    for path in dataset.good:
        name = path.with_suffix(".npy").name
        assert (out / name).read_bytes() == (dataset.infer["npy"] / name).read_bytes(), name
    entries = _manifest(out)
    assert len(entries) == COUNT
    _check_manifest(entries, dataset, {p.with_suffix(".npy").name for p in dataset.good})
    assert sorted((out / "dead_letter.txt").read_text().splitlines()) == dataset.messages
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".convert"]
    assert not leftovers and not list((out / ".convert" / "staging").iterdir())


@pytest.mark.slow
def test_tfrecord_records_hold_the_npy_outputs(dataset, tmp_path):
    listing = tmp_path / "inputs.txt"  # a list of paths, relative to its folder, with a comment
    listing.write_text("# the good images\n" + "".join(f"{os.path.relpath(p, tmp_path)}\n" for p in dataset.good))
    out = tmp_path / "out"
    result = cli("convert", listing, "--out", out, "--model", dataset.model, "--format", "tfrecord", *TILING, *BEAM)
    assert result.exit_code == 0, result.output
    records = list(read_records(str(out / "records-*.tfrecord")).as_numpy_iterator())
    assert len(records) == COUNT
    for r in records:
        stem = Path(r["rgb_path"].decode()).stem
        expected = np.load(dataset.infer["npy"] / f"{stem}.npy")
        assert r["raw"].dtype == np.uint16 and list(r["shape"]) == list(expected.shape)
        np.testing.assert_array_equal(r["raw"], expected)
        assert r["cfa"] == b"RGGB" and r["sensor"] == b"s7"
        assert (r["black_level"], r["white_level"], r["normaliser"]) == (0, 1023, 1024) == (
            SAMSUNG_S7.black_level, SAMSUNG_S7.white_level, SAMSUNG_S7.normaliser)
    entries = _manifest(out)
    shards = {p.name for p in out.glob("records-*.tfrecord")}
    assert sorted(Path(e["input"]).resolve() for e in entries) == sorted(p.resolve() for p in dataset.good)
    assert {e["output"] for e in entries} == shards


@pytest.mark.slow
def test_an_object_store_through_beams_file_systems(dataset, tmp_path):
    """Inputs (a glob and a list), the model and --out all behind `mirror://`: the gs:// and s3:// code paths."""
    from revisp_tf.convert.pipeline import ConvertConfig, convert

    images = dataset.good[0].parent
    listed = tmp_path / dataset.good[0].name  # a relative entry of the list: beside it
    listed.write_bytes(dataset.good[0].read_bytes())
    (tmp_path / "more.txt").write_text(f"{listed.name}\n{PREFIX}{dataset.corrupt}\n")
    out = tmp_path / "out"
    report = convert([PREFIX + str(images / "img1*.jpg"), PREFIX + str(tmp_path / "more.txt")], PREFIX + str(out),
                     model_path=PREFIX + str(dataset.model), config=ConvertConfig(tile=64, overlap=16),
                     beam_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])  # one process: mirror:// is registered here only
    good = sorted(images.glob("img1*.jpg")) + [listed]
    assert (report.progress.converted, report.progress.failed) == (len(good), 1)
    assert report.failures[0].startswith(f"{PREFIX}{dataset.corrupt}: corrupt JPEG data")
    for path in good:
        name = path.with_suffix(".npy").name
        assert (out / name).read_bytes() == (dataset.infer["npy"] / name).read_bytes(), name
    entries = _manifest(out)
    assert sorted(e["input"] for e in entries) == sorted(PREFIX + str(p) for p in good)
    assert {e["model_sha256"] for e in entries} == {sha256(dataset.model)}
    assert not (out / ".convert" / "staging").exists()  # staged in a local folder instead
