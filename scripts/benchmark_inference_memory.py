"""Peak memory of tiled inference at 12 MP and 48 MP: it must not grow with the image.

Each size runs in a fresh subprocess (so one run's high-water mark cannot hide the other's) that
builds the model, fills the input frame, resets the kernel's RSS high-water mark
(/proc/self/clear_refs) and TensorFlow's allocator peak, then runs `infer_tiled` once. Reported:

- peak RSS: the process's resident high-water mark during the call (VmHWM), everything included;
- frame arrays: the input (H, W, 3) float32 and the output (H/2, W/2, 4) float32, which any
  inference must hold and which grow with the image;
- working memory: peak RSS - RSS before the call - output array, i.e. what tiling itself costs
  (one batch of tiles, TensorFlow's activations and allocator caches). This must differ by less
  than 10 % between the sizes (the exit status says whether it does);
- TF peak: TensorFlow's CPU allocator peak; Python peak: tracemalloc's peak of Python and NumPy
  allocations during the call (the output array plus the tile buffers).

Usage (about 2 min on 2 cores at the default width; the paper width 64 takes far longer):
    python scripts/benchmark_inference_memory.py [--base-filters 8] [--variant single] [--tile 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = {"12 MP": (3024, 4032), "48 MP": (6048, 8064)}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _frame(h: int, w: int):
    """A smooth colour frame with a blown-out band, filled row block by row block (no full-size temporaries)."""
    import numpy as np

    rgb = np.empty((h, w, 3), np.float32)
    x = np.linspace(0.0, 6.0, w, dtype=np.float32)
    for y0 in range(0, h, 256):
        y = np.linspace(y0 / h, min(y0 + 256, h) / h, min(256, h - y0), dtype=np.float32)[:, None] * 5.0
        for c in range(3):
            rgb[y0 : y0 + 256, :, c] = 0.5 + 0.45 * np.sin(x[None, :] * (c + 1) + y * (2 - c))
    rgb[h // 3 : h // 3 + h // 20] = 1.0
    return rgb


def child(args) -> dict:
    """Runs in the subprocess: one tiled inference, its memory figures as a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tracemalloc

    import tensorflow as tf

    from revisp_tf.inference import infer_tiled
    from revisp_tf.models import build_reverse_isp

    h, w = args.child
    model = build_reverse_isp(args.variant, base_filters=args.base_filters, depth=args.depth)
    rgb = _frame(h, w)
    before_kb = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    tf.config.experimental.reset_memory_stats("CPU:0")
    tracemalloc.start()
    start = time.perf_counter()
    out = infer_tiled(model, rgb, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_kb = _status_kb("VmHWM")
    mib = 1024 * 1024
    return {
        "size": f"{h}x{w}",
        "seconds": seconds,
        "rss_before_mib": before_kb / 1024,
        "peak_rss_mib": peak_kb / 1024,
        "input_mib": rgb.nbytes / mib,
        "output_mib": out.nbytes / mib,
        "working_mib": (peak_kb - before_kb) / 1024 - out.nbytes / mib,
        "tf_peak_mib": tf.config.experimental.get_memory_info("CPU:0")["peak"] / mib,
        "python_peak_mib": py_peak / mib,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="single", choices=("baseline", "single", "dual"))
    p.add_argument("--base-filters", type=int, default=8, help="U-Net width (64 = the paper's, much slower)")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--child", type=int, nargs=2, metavar=("H", "W"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    results = {}
    for name, (h, w) in SIZES.items():
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", str(h), str(w)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"tiled inference, {args.variant} U-Net width {args.base_filters} depth {args.depth}, "
        f"tile {args.tile}, overlap {args.overlap}, batch {args.batch_size}"
    )
    cols = [
        "size",
        "seconds",
        "peak_rss_mib",
        "rss_before_mib",
        "input_mib",
        "output_mib",
        "working_mib",
        "tf_peak_mib",
        "python_peak_mib",
    ]
    print(" | ".join(f"{c:>15}" for c in ["frame", *cols]))
    for name, r in results.items():
        print(" | ".join([f"{name:>15}", f"{r['size']:>15}", *(f"{r[c]:15.1f}" for c in cols[1:])]))
    small, large = (results[n]["working_mib"] for n in SIZES)
    growth = large / small - 1.0
    total_growth = results["48 MP"]["peak_rss_mib"] / results["12 MP"]["peak_rss_mib"] - 1.0
    print(f"working memory 48 MP vs 12 MP: {growth:+.1%} (must be within 10 %)")
    print(f"peak RSS 48 MP vs 12 MP: {total_growth:+.1%} (includes the 4x larger input and output frames)")
    return 0 if abs(growth) < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
