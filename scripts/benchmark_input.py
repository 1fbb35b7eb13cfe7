"""Does the tf.data input pipeline keep up with training? Images/s of both, on this machine.

    python scripts/benchmark_input.py                      # defaults below
    python scripts/benchmark_input.py --examples 48 --runs 5 --unet-steps 3

Writes a generated AIM 2022 Track 1-like dataset into a temporary folder (504x504 JPEG RGB,
uint16 packed RAW, float16 demosaiced RAW; smooth random content, so the JPEGs have a
realistic size), then prints:
- the scan's validation rate (files/s);
- the tf.data pipeline's images/s for 504 crops, batch 6 (median of --runs runs), for the
  paper's S7 setting (504 patches, augment="transpose") and for 512 images with all 8
  flips/rotations (augment="dihedral", which needs the 2 px margin);
- the training images/s of a base-32 U-Net (revisp_tf.models.unet.build_unet, RGB + mask in,
  3 channels out, Adam + MSE, batch 6 at 504x504; median of --unet-steps timed steps);
- the ratio: the pipeline must feed at least 5x what training consumes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from revisp_tf.data.pipeline import make_dataset  # noqa: E402
from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.isp.bayer import mosaic  # noqa: E402
from revisp_tf.isp.sensor import SAMSUNG_S7  # noqa: E402
from revisp_tf.models.unet import build_unet  # noqa: E402

CROP, BATCH = 504, 6


def write_dataset(root: Path, n: int, size: int, seed: int = 0) -> None:
    """n examples `{scene}_{k}` (6 per scene) of smooth random content at size x size."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.random((size // 16, size // 16, 3), dtype=np.float32)
        rgb = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        rgb += rng.normal(0, 0.02, rgb.shape).astype(np.float32)  # sensor-like noise
        rgb = rgb.clip(0, 1)
        name = f"{i // 6}_{i % 6}"
        assert cv2.imwrite(str(root / f"{name}.jpg"), np.round(rgb[..., ::-1] * 255).astype(np.uint8))
        raw = mosaic(rgb).numpy()
        np.save(root / f"{name}.npy", np.round(raw * 1023).astype(np.uint16))
        np.save(root / f"{name}.demosaic.npy", rgb.astype(np.float16))


def pipeline_rate(examples, augment: str, runs: int, batches: int) -> float:
    """Median images/s over `runs` fresh iterators, each timing `batches` batches after a warm-up batch."""
    ds = make_dataset(examples, crop=CROP, batch_size=BATCH, augment=augment, seed=0, sensor=SAMSUNG_S7)
    rates = []
    for _ in range(runs):
        it = iter(ds)
        next(it)
        t = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * BATCH / (time.perf_counter() - t))
    return statistics.median(rates)


def unet_training_rate(steps: int) -> float:
    """Median training images/s of a base-32 U-Net (batch 6, 504x504, Adam, MSE) after one warm-up step."""
    model = build_unet(in_channels=4, out_channels=3, base_filters=32, depth=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, CROP, CROP, 4), dtype=np.float32)
    y = rng.random((BATCH, CROP, CROP, 3), dtype=np.float32)
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    return BATCH / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=36, help="generated examples per dataset")
    parser.add_argument("--runs", type=int, default=5, help="pipeline runs (median)")
    parser.add_argument("--batches", type=int, default=8, help="timed batches per pipeline run")
    parser.add_argument("--unet-steps", type=int, default=3, help="timed U-Net training steps (median)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for size, augment in ((504, "transpose"), (512, "dihedral")):
            root = Path(tmp) / f"s{size}"
            root.mkdir()
            write_dataset(root, args.examples, size)
            t = time.perf_counter()
            examples = scan_pairs(root, sensor=SAMSUNG_S7)
            scan_s = time.perf_counter() - t
            print(f"scan {size}x{size}: {len(examples)} examples validated at {len(examples) / scan_s:.1f} examples/s")
            rates[augment] = pipeline_rate(examples, augment, args.runs, args.batches)
            print(
                f"tf.data pipeline, {CROP} crops of {size}x{size} (augment={augment!r}), batch {BATCH}:"
                f" {rates[augment]:.1f} images/s (median of {args.runs} runs)"
            )
    train = unet_training_rate(args.unet_steps)
    print(f"U-Net base 32 training, batch {BATCH} at {CROP}x{CROP}: {train:.3f} images/s ({BATCH / train:.1f} s/step)")
    worst = min(rates.values())
    print(f"ratio pipeline / training: {worst / train:.0f}x (slowest pipeline setting; need >= 5x)")


if __name__ == "__main__":
    main()
