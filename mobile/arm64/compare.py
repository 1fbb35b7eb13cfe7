"""Runs mobile/run_litert.py on ARM64 (LiteRT's aarch64 build, under qemu) and on x86, and compares them with Keras.

    python mobile/arm64/compare.py MODEL.tflite... --images IMAGE... --out DIR [--keras MODEL.keras]
        [--root ~/.cache/revisp-tf/arm64-root] [--num-threads 2] [--no-skip] [--tile 512 --overlap 64 --align 16]

The first run builds the arm64 Debian root (mobile/arm64/build_root.sh: debootstrap, Debian's
Python 3.11 and PyPI's aarch64 ai-edge-litert wheel, the same version as the x86 venv's); later
runs reuse it. Each model runs on every image with the same runner and arguments, twice:

- ARM64: `qemu-aarch64-static -cpu cortex-a76 -L ROOT ROOT/usr/bin/python3 mobile/run_litert.py ...` ->
  DIR/arm64/<model>/<image>.npy
- x86: this Python, the same runner -> DIR/x86/<model>/<image>.npy

With --keras (the model the .tflite files were exported from; needs TensorFlow), the Keras output
too -> DIR/keras/<image>.npy: one pass for an image no larger than --tile, else
`revisp_tf.infer.tiled.TiledInference` with both nets on every tile (the full graph) and the same
tiling; a global-stage model gets the whole image's frame context. The table gives max |ARM64 -
x86| and max |ARM64 - Keras| per model and image, and which nets each ran.

The seconds printed are qemu's: an emulator's wall time says nothing about a phone's speed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUNNER = HERE.parent / "run_litert.py"
DEFAULT_ROOT = Path.home() / ".cache" / "revisp-tf" / "arm64-root"


def ensure_root(root: Path) -> None:
    """The arm64 root, built by build_root.sh if it is not there yet (which also says what is missing)."""
    print(f"$ {HERE / 'build_root.sh'} --root {root}", flush=True)
    start = time.perf_counter()
    rc = subprocess.run(["bash", str(HERE / "build_root.sh"), "--root", str(root)]).returncode
    if rc != 0:
        raise SystemExit(f"error: the arm64 root at {root} is not usable (build_root.sh exit {rc}); see above")
    print(f"arm64 root ready in {time.perf_counter() - start:.1f} s", flush=True)


def run_runner(prefix: list[str], model: Path, images: list[Path], out: Path, extra: list[str]) -> tuple[list[str], float]:
    """(the runner's lines, wall seconds) for one model on all images; raises with its stderr on failure."""
    cmd = [*prefix, str(RUNNER), str(model), *map(str, images), "--out", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[:3])} ... exit {done.returncode}:\n{done.stderr[-3000:]}")
    return [line for line in done.stdout.splitlines() if line.strip()], seconds


def keras_outputs(keras_path: Path, images: list[Path], out: Path, args) -> dict[str, np.ndarray]:
    """The Keras model's output for every image (cached in `out`), as the runner would compute it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(HERE.parents[1]))
    from revisp_tf.global_stage.context import (
        context_window,
        frame_context,
        frame_summary,
    )
    from revisp_tf.infer.tiled import TiledInference
    from revisp_tf.models import has_global_stage, load_reverse_isp

    sys.path.insert(0, str(HERE.parent))
    from run_litert import read_rgb

    model = load_reverse_isp(keras_path)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in images:
        rgb = read_rgb(path)
        if max(rgb.shape[:2]) <= args.tile:
            inputs = [rgb[None], frame_context(rgb)[None]] if has_global_stage(model) else rgb[None]
            bayer = model.predict_on_batch(inputs)[0]
        else:
            summary = frame_summary(rgb) if has_global_stage(model) else None
            context = (lambda y0, x0, h, w: context_window(summary, y0, x0, h, w)) if summary else None
            margin = args.overlap // 8 * 2 if args.margin is None else args.margin
            bayer = TiledInference(model, skip_oe=False)(rgb, args.tile, args.overlap, margin=margin, context=context)
        np.save(out / f"{path.stem}.npy", bayer)
        results[path.stem] = bayer
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path, nargs="+")
    p.add_argument("--images", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--keras", type=Path, help="the .keras model the .tflite files come from (needs TensorFlow)")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the arm64 root [default: {DEFAULT_ROOT}]")
    p.add_argument("--cpu", default="cortex-a76", help="the emulated core (qemu -cpu): NEON, FP16 arithmetic, dot product")
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--no-skip", action="store_true")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--margin", type=int, default=None)
    p.add_argument("--align", type=int, default=16)
    args = p.parse_args(argv)
    for f in [*args.models, *args.images, *([args.keras] if args.keras else [])]:
        if not f.is_file():
            print(f"error: {f}: no such file", file=sys.stderr)
            return 2
    ensure_root(args.root)
    extra = ["--num-threads", str(args.num_threads), "--tile", str(args.tile), "--overlap", str(args.overlap),
             "--align", str(args.align), *(["--margin", str(args.margin)] if args.margin is not None else []),
             *(["--no-skip"] if args.no_skip else [])]
    arm64 = ["qemu-aarch64-static", "-cpu", args.cpu, "-L", str(args.root), str(args.root / "usr" / "bin" / "python3")]
    want = keras_outputs(args.keras, args.images, args.out / "keras", args) if args.keras else {}
    rows = []
    for model in args.models:
        outs = {}
        for name, prefix in (("x86", [sys.executable]), ("arm64", arm64)):
            outs[name] = args.out / name / model.stem
            lines, seconds = run_runner(prefix, model, args.images, outs[name], extra)
            print(f"{name} {model.name}: {seconds:.1f} s wall" + (" (qemu: not a speed figure)" if name == "arm64" else ""))
            for line in lines:
                print(f"  {line}")
        for img in args.images:
            a, x = (np.load(outs[n] / f"{img.stem}.npy") for n in ("arm64", "x86"))
            k = want.get(img.stem)
            rows.append((model.name, img.name, float(np.abs(a - x).max()),
                         None if k is None else float(np.abs(a - k).max()), None if k is None else float(np.abs(x - k).max()),
                         None if k is None else float(np.abs(a - k).mean())))
    fmt = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
    print("\n| model | image | max abs ARM64 - x86 | max abs ARM64 - Keras | max abs x86 - Keras | mean abs ARM64 - Keras |")
    print("|---|---|---|---|---|---|")
    for m, img, ax, ak, xk, mk in rows:
        print(f"| {m} | {img} | {fmt(ax)} | {fmt(ak)} | {fmt(xk)} | {fmt(mk)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
