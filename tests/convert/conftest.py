"""The generated dataset of the convert tests, and what `infer` makes of it (once for the package).

30 JPEG and PNG images of 64-200 px a side, some with a blown-out area (the dual net's OE branch
runs there); a JPEG with garbage in its scan and an "image" that cannot be read (a folder named
unreadable.png: as root, a file's permissions would not stop a read), each in a folder of its
own; a small dual model with a global stage (so the frame context goes through the pipeline
too), tiled at 64 px so that frames take several tiles.
"""

import types

import numpy as np
import pytest
from click.testing import CliRunner

from revisp_tf.cli import main
from revisp_tf.io.images import write_rgb
from revisp_tf.models import build_reverse_isp
from tests.lively import enliven

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


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="package")
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
        result = cli("infer", *good, "--model", model_path, "--out", outputs[fmt], "--format", fmt, *TILING)
        assert result.exit_code == 0, result.output
    # What `infer` says about each bad file: the line the dead-letter file must hold.
    messages = []
    for bad in (corrupt, unreadable):
        result = cli("infer", bad.parent, "--model", model_path, "--out", root / "refused", *TILING)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output
        messages.append(result.stderr.strip().removeprefix("error: "))
    inputs = [images, corrupt.parent, unreadable.parent]
    return types.SimpleNamespace(inputs=inputs, good=good, corrupt=corrupt, model=model_path, infer=outputs, messages=sorted(messages))


