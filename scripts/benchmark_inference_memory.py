"""Peak memory of `revisp-tf infer` on one large frame at 12, 48 and 100 MP: it must not grow with the image.

Each size runs in a fresh subprocess (so one run's high-water mark cannot hide the other's). The
subprocess loads the model (default: the shipped model, in its inference form, as `infer` does),
writes a generated frame as a JPEG (a smooth colour field with a blown-out band, made row block by
row block as uint8), resets the kernel's RSS high-water mark (/proc/self/clear_refs) and
TensorFlow's allocator peak, then runs `revisp_tf.infer.files.reconstruct_files` on that JPEG with
--format output (default `npy`): the library call behind `revisp-tf infer FRAME.jpg --format npy`.
So the measured window holds the JPEG decode (to uint8), the tiles and the streamed output (and
for `dng` the colour fit, for `png` the read-back of the scratch file). Reported:

- peak RSS: the process's resident high-water mark during the call (VmHWM), everything included;
- input: the decoded uint8 frame (H x W x 3 bytes), the one part that must grow with the image;
- working memory: peak RSS - RSS before the call - the uint8 input, i.e. what inference itself
  holds (TensorFlow's activations and caches, one group of tile rows, the JPEG's bytes);
- TF peak: TensorFlow's CPU allocator peak; Python peak: tracemalloc's peak of Python and NumPy
  allocations during the call.

Targets (the exit status is 0 only if all hold): 100 MP under 2 GiB peak RSS; peak RSS at 48 MP
within 10 % of 12 MP's plus the extra bytes of the larger uint8 input.

Usage (on 2 cores: about 10 min for the three sizes with the shipped model):
    python scripts/benchmark_inference_memory.py [--sizes 12,48,100] [--tile 512] [--overlap 64] [--format dng]
    python scripts/benchmark_inference_memory.py --base-filters 8 --variant single   # a fresh model instead
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"12": (3024, 4032), "48": (6048, 8064), "100": (8192, 12288)}
GIB = 2**30


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def frame(h: int, w: int):
    """A smooth uint8 colour frame with a blown-out band, filled row block by row block (no full-size float)."""
    import numpy as np

    rgb = np.empty((h, w, 3), np.uint8)
    x = np.linspace(0.0, 6.0, w, dtype=np.float32)
    for y0 in range(0, h, 256):
        y = np.linspace(y0 / h, min(y0 + 256, h) / h, min(256, h - y0), dtype=np.float32)[:, None] * 5.0
        for c in range(3):
            rgb[y0 : y0 + 256, :, c] = np.round(255 * (0.5 + 0.45 * np.sin(x[None, :] * (c + 1) + y * (2 - c))))
    rgb[h // 3 : h // 3 + h // 20] = 255
    return rgb


def _model(args):
    from revisp_tf.models import build_reverse_isp
    from revisp_tf.models.inference_form import inference_form, load_inference_model
    from revisp_tf.weights import default_model_path

    if args.base_filters is None:
        return load_inference_model(default_model_path()), "the shipped model (inference form)"
    model = build_reverse_isp(args.variant, base_filters=args.base_filters, depth=args.depth)
    return inference_form(model), f"a fresh {args.variant} model at width {args.base_filters} (inference form)"


def child(args) -> dict:
    """Runs in the subprocess: one `infer` call on a JPEG frame, its memory figures as a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tracemalloc

    import cv2
    import tensorflow as tf

    from revisp_tf.infer.files import reconstruct_files
    from revisp_tf.io.images import set_max_pixels
    from revisp_tf.isp.sensor import SAMSUNG_S7

    h, w = args.child
    model, what = _model(args)
    set_max_pixels(h * w)  # `revisp-tf infer --max-megapixels`
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.jpg"
        rgb = frame(h, w)
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=rgb), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise RuntimeError(f"could not write {path}")
        input_bytes = rgb.nbytes
        del rgb
        before_kb = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        tf.config.experimental.reset_memory_stats("CPU:0")
        tracemalloc.start()
        start = time.perf_counter()
        [out] = reconstruct_files([path], model, Path(tmp) / "out", args.format, SAMSUNG_S7, tile=args.tile,
                                  overlap=args.overlap, batch_size=args.batch_size, progress=False)
        seconds = time.perf_counter() - start
        _, py_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_kb = _status_kb("VmHWM")
        output_bytes = out.stat().st_size
    mib = 2**20
    return {
        "model": what,
        "size": f"{h}x{w}",
        "seconds": seconds,
        "rss_before_mib": before_kb / 1024,
        "peak_rss_mib": peak_kb / 1024,
        "input_mib": input_bytes / mib,
        "output_file_mib": output_bytes / mib,
        "working_mib": (peak_kb - before_kb) / 1024 - input_bytes / mib,
        "tf_peak_mib": tf.config.experimental.get_memory_info("CPU:0")["peak"] / mib,
        "python_peak_mib": py_peak / mib,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="12,48,100", help=f"comma-separated megapixel sizes from {list(SIZES)}")
    p.add_argument("--base-filters", type=int, help="build a fresh model of this width instead of the shipped one")
    p.add_argument("--variant", default="dual", choices=("baseline", "single", "dual"), help="with --base-filters")
    p.add_argument("--depth", type=int, default=4, help="with --base-filters")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--format", default="npy", choices=("npy", "dng", "png"), help="infer's output format")
    p.add_argument("--child", type=int, nargs=2, metavar=("H", "W"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    sizes = [s.strip() for s in args.sizes.split(",")]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        p.error(f"--sizes: {unknown} not in {list(SIZES)}")
    results = {}
    for name in sizes:
        h, w = SIZES[name]
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", str(h), str(w)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name} MP done in {results[name]['seconds']:.0f} s", flush=True)
    first = next(iter(results.values()))
    print(f"revisp-tf infer --format {args.format}, {first['model']}, tile {args.tile}, overlap {args.overlap}, "
          f"batch {args.batch_size}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cols = ["size", "seconds", "peak_rss_mib", "rss_before_mib", "input_mib", "working_mib", "tf_peak_mib",
            "python_peak_mib", "output_file_mib"]
    print(" | ".join(f"{c:>15}" for c in ["frame", *cols]))
    for name, r in results.items():
        print(" | ".join([f"{name + ' MP':>15}", f"{r['size']:>15}", *(f"{r[c]:15.1f}" for c in cols[1:])]))
    ok = True
    if "100" in results:
        peak = results["100"]["peak_rss_mib"] / 1024
        ok &= peak < 2.0
        print(f"100 MP peak RSS: {peak:.2f} GiB (target under 2 GiB): {'MET' if peak < 2.0 else 'NOT MET'}")
    if "12" in results and "48" in results:
        small, large = results["12"], results["48"]
        allowed = small["peak_rss_mib"] * 1.10 + large["input_mib"] - small["input_mib"]
        ok &= large["peak_rss_mib"] <= allowed
        print(f"48 MP peak RSS {large['peak_rss_mib']:.0f} MiB vs 12 MP's {small['peak_rss_mib']:.0f} MiB + 10 % + "
              f"the larger input's extra {large['input_mib'] - small['input_mib']:.0f} MiB = {allowed:.0f} MiB: "
              f"{'MET' if large['peak_rss_mib'] <= allowed else 'NOT MET'}")
        growth = large["working_mib"] / small["working_mib"] - 1.0
        print(f"working memory (peak - before - input) 48 MP vs 12 MP: {growth:+.1%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
