"""Median milliseconds per patch of reverse-ISP .tflite models on the LiteRT CPU runtime (XNNPACK).

    python mobile/benchmark_litert.py --models a.tflite b.tflite [--threads 1 2 4] [--runs 5]
    python mobile/benchmark_litert.py --export-width 16 --variant dual [--size 504 504] [--keep DIR]

With --export-width, random-weight models of that U-Net width are exported on the fly in float32,
float16 and int8 (`revisp_tf.export.export_tflite`, needs TensorFlow); timings do not depend on
the weights' values. The input is a real AIM 2022 S7 patch when ../shared/realdata is present,
a generated image otherwise. Each model and thread count gets one warm-up run, then --runs timed
runs; the table gives the median and the minimum. Thread counts above the machine's cores
oversubscribe it (say so when reporting).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_litert import input_shape, load, read_rgb, run  # noqa: E402

from revisp_tf.realdata import realdata_dir  # noqa: E402
REALDATA = realdata_dir()


def sample_image(h: int, w: int) -> tuple[np.ndarray, str]:
    """A real S7 patch (overexposed scene 78) cropped or tiled to (h, w), or a generated image."""
    real = REALDATA / "aim22_s7_rgb" / "78_30.jpg"
    if real.is_file():
        img = np.tile(read_rgb(real), (-(-h // 504), -(-w // 504), 1))[:h, :w]
        return np.ascontiguousarray(img), f"real patch {real.name}"
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.5 * np.sin(xx / 37), 0.5 + 0.5 * np.cos(yy / 23), (xx + yy) / (h + w)], -1)
    return img.astype(np.float32), "generated image"


def time_model(path: Path, rgb: np.ndarray, threads: int, runs: int) -> list[float]:
    """Milliseconds of `runs` invocations after one warm-up (which also sizes the tensors)."""
    interpreter = load(path, threads)
    run(interpreter, rgb)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(interpreter, rgb)
        times.append(1000 * (time.perf_counter() - start))
    return times


def export_models(width: int, variant: str, size, out_dir: Path) -> list[Path]:
    """float32, float16 and int8 exports of a random model of the given width."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from revisp_tf.export.calibration import calibration_images
    from revisp_tf.export.convert import export_tflite
    from revisp_tf.models import build_reverse_isp

    keras.utils.set_random_seed(0)
    model = build_reverse_isp(variant, base_filters=width)
    calibration = calibration_images(size, count=8)
    paths = []
    for quantize in ("none", "fp16", "int8"):
        path = out_dir / f"{variant}_w{width}_{quantize}.tflite"
        report = export_tflite(
            model, path, quantize=quantize, size=size, representative_data=calibration, check_data=calibration[:1]
        )
        print("\n".join(report.lines()), flush=True)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", type=Path, nargs="+")
    src.add_argument("--export-width", type=int)
    p.add_argument("--variant", default="dual", choices=("baseline", "single", "dual"))
    p.add_argument(
        "--size", type=int, nargs=2, default=(504, 504), metavar=("H", "W"), help="patch size (and static export size)"
    )
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--keep", type=Path, help="directory to keep the exported models in")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            models = args.models
        else:
            out_dir = args.keep or Path(tmp)
            out_dir.mkdir(parents=True, exist_ok=True)
            models = export_models(args.export_width, args.variant, tuple(args.size), out_dir)
        rgb, source = sample_image(*args.size)
        print(
            f"\nLiteRT CPU (XNNPACK), {args.size[0]}x{args.size[1]} {source}, {os.cpu_count()} cores, median of {args.runs} runs"
        )
        print(f"{'model':<32} {'MB':>8} {'input':>10} " + " ".join(f"{f'{t} thr ms':>14}" for t in args.threads))
        for path in models:
            fixed = input_shape(load(path, 1))
            shape = "dynamic" if fixed == (None, None) else f"{fixed[0]}x{fixed[1]}"
            cells = []
            for threads in args.threads:
                times = time_model(path, rgb, threads, args.runs)
                cells.append(f"{statistics.median(times):7.0f} ({min(times):.0f})")
            print(
                f"{path.name:<32} {path.stat().st_size / 1e6:8.2f} {shape:>10} " + " ".join(f"{c:>14}" for c in cells), flush=True
            )
        print("cells: median ms per patch (minimum)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
