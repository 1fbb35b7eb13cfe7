"""`revisp-tf convert` (Apache Beam's DirectRunner, two worker processes) against `revisp-tf infer`.

One generated dataset for the module: 30 JPEG and PNG images of 64-200 px a side, some with a
blown-out area (the dual net's OE branch runs there), a JPEG with garbage in its scan and an
"image" that cannot be read (a folder named unreadable.png: as root, a file's permissions would not stop a read); a small dual model with a global
stage (so the frame context goes through the pipeline too), tiled at 64 px so that frames take
several tiles.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -e '.[test]' brings it)")

from revisp_tf.cli import main  # noqa: E402
from revisp_tf.convert.tfrecord import read_records  # noqa: E402
from revisp_tf.io import write_rgb  # noqa: E402
from revisp_tf.isp.sensor import SAMSUNG_S7  # noqa: E402
from revisp_tf.models import build_reverse_isp  # noqa: E402
from revisp_tf.weights import sha256  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.lively import enliven  # noqa: E402

TILING = ["--tile", "64", "--overlap", "16"]
BEAM = ["--", "--direct_num_workers", "2"]  # multi-processing: the default mode, two workers on any machine
COUNT = 30


def _image(rng, h, w, blown: bool) -> np.ndarray:
    y, x = np.mgrid[:h, :w] / np.array([h, w], np.float64)[:, None, None]
    base = np.stack([x, y, 0.5 * (x + y)], -1) * rng.uniform(0.4, 0.9, 3) + rng.normal(0, 0.04, (h, w, 3))
    if blown:
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        base[y0 : y0 + h // 3, x0 : x0 + w // 3] = 1.0
    return (np.clip(base, 0, 1) * 255).round().astype(np.uint8)


def _corrupt(jpeg: bytes) -> bytes:
    """Garbage in mid-scan, the end marker kept: OpenCV decodes it, libjpeg warns 'Corrupt JPEG data'."""
    data = bytearray(jpeg)
    i = data.find(b"\xff\xda")
    start = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    mid = (start + len(data) - 2) // 2
    data[mid : mid + 40] = np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8).tobytes()
    return bytes(data)


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("convert")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    good = []
    for k in range(COUNT):
        h, w = 2 * rng.integers(32, 101, 2)
        good.append(write_rgb(images / f"img{k:02d}.{'png' if k % 3 == 0 else 'jpg'}", _image(rng, h, w, blown=k % 4 == 0)))
    # Each bad file in a folder of its own: `infer` on that folder says what it says of the file in a folder.
    corrupt = root / "bad1" / "corrupt.jpg"
    unreadable = root / "bad2" / "unreadable.png"
    unreadable.mkdir(parents=True)
    corrupt.parent.mkdir()
    corrupt.write_bytes(_corrupt(good[1].read_bytes()))
    model = build_reverse_isp("dual", base_filters=2, depth=2, global_stage="upi")
    enliven(model)
    model_path = root / "model.keras"
    model.save(model_path)
    outputs = {}
    for fmt in ("npy", "dng"):
        outputs[fmt] = root / f"infer_{fmt}"
        result = _cli("infer", *good, "--model", model_path, "--out", outputs[fmt], "--format", fmt, *TILING)
        assert result.exit_code == 0, result.output
    # What `infer` says about each bad file: the line the dead-letter file must hold.
    messages = []
    for bad in (corrupt, unreadable):
        result = _cli("infer", bad.parent, "--model", model_path, "--out", root / "refused", *TILING)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output
        messages.append(result.stderr.strip().removeprefix("error: "))
    inputs = [images, corrupt.parent, unreadable.parent]
    return types.SimpleNamespace(inputs=inputs, good=good, model=model_path, infer=outputs, messages=sorted(messages))


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
    result = _cli("convert", *dataset.inputs, "--out", out, "--model", dataset.model, "--format", fmt, *TILING, *BEAM)
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
    result = _cli("convert", listing, "--out", out, "--model", dataset.model, "--format", "tfrecord", *TILING, *BEAM)
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
