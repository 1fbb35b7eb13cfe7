"""Runs an exported reverse-ISP .tflite on images the way a phone does, and writes the bayer as .npy.

On-device inference reproduced: the LiteRT CPU interpreter with its default XNNPACK delegate,
`num_threads` threads, the `reverse_isp` signature of the model contract (mobile/README.md).
Needs only NumPy, OpenCV and `ai-edge-litert` (no TensorFlow).

    python mobile/run_litert.py MODEL.tflite IMAGE... --out DIR [--num-threads 4] [--normaliser 1024] [--no-skip]

Each IMAGE (JPEG/PNG, 8- or 16-bit RGB) becomes DIR/<stem>.npy: float32 (H/2, W/2, 4) packed RGGB
in model units, or uint16 stored values round(units * normaliser) with --normaliser (the AIM 2022
submission format). A static model needs images of its input size; a dynamic one takes any even size.

A dual (mask-fusion) model carries the signatures `skip_mask`, `skip_oe`, `skip_noe` and `skip_fuse`: the runner
computes the mask first and runs the OE net only if some pixel is overexposed (the NOE net only
if some is not), then fuses, feeding zeros for the net it skipped; the output equals
`reverse_isp`'s. `--no-skip` runs `reverse_isp` instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

SIGNATURE, INPUT, OUTPUT = "reverse_isp", "rgb", "bayer"
MASK, OE, NOE = "mask", "oe", "noe"  # tensor names
SKIP = {MASK: "skip_mask", OE: "skip_oe", NOE: "skip_noe", "fuse": "skip_fuse"}  # signature names


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from an 8- or 16-bit image file, or ValueError naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: not a readable 8- or 16-bit JPEG/PNG image")
    if img.ndim == 2 or img.shape[-1] not in (3, 4):
        raise ValueError(f"{path}: expected an RGB image, got shape {img.shape}")
    rgb = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) / np.float32(np.iinfo(img.dtype).max)


def load(model_path: Path, num_threads: int) -> Interpreter:
    """The interpreter (XNNPACK delegate applied by default), checked against the model contract."""
    interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
    signatures = interpreter.get_signature_list()
    want = {"inputs": [INPUT], "outputs": [OUTPUT]}
    if signatures.get(SIGNATURE) != want:
        raise ValueError(f"{model_path}: expected signature {SIGNATURE!r} {want} (models with a frame context "
                         f"need revisp_tf to compute it), got {signatures}")
    return interpreter


def can_skip(interpreter: Interpreter) -> bool:
    """True if the model carries the skip_* signatures of a mask-fusion model."""
    return set(SKIP.values()) <= set(interpreter.get_signature_list())


def input_shape(interpreter: Interpreter) -> tuple[int | None, int | None]:
    """(H, W) of a static model, (None, None) of a dynamic one."""
    sig = interpreter.get_signature_runner(SIGNATURE).get_input_details()[INPUT]["shape_signature"]
    return tuple(None if s < 0 else int(s) for s in sig[1:3])


def check_image(interpreter: Interpreter, rgb: np.ndarray) -> None:
    """ValueError unless the image fits the model: even sides, and a static model's size."""
    h, w = rgb.shape[:2]
    fixed = input_shape(interpreter)
    if fixed != (None, None) and fixed != (h, w):
        raise ValueError(f"image {h}x{w}: this static model takes {fixed[0]}x{fixed[1]}")
    if h % 2 or w % 2:
        raise ValueError(f"image {h}x{w}: expected even height and width (whole 2x2 CFA tiles)")


def run(interpreter: Interpreter, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H/2, W/2, 4) packed RGGB, model units; the input tensor is resized to the image."""
    check_image(interpreter, rgb)
    runner = interpreter.get_signature_runner(SIGNATURE)
    return runner(**{INPUT: rgb[None]})[OUTPUT][0]


def run_skipping(interpreter: Interpreter, rgb: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Like `run`, through mask -> the nets the mask gives weight -> fuse; returns (bayer, the nets that ran)."""
    check_image(interpreter, rgb)
    x = {INPUT: np.asarray(rgb, np.float32)[None]}
    mask = interpreter.get_signature_runner(SKIP[MASK])(**x)[MASK]
    needed = {OE: bool(np.any(mask != 0)), NOE: bool(np.any(mask != 1))}
    branches = {name: interpreter.get_signature_runner(SKIP[name])(**x)[name] for name in (OE, NOE) if needed[name]}
    ran, present = tuple(branches), next(iter(branches.values()))
    for name in (OE, NOE):
        branches.setdefault(name, np.zeros_like(present))  # weighted by 0 wherever it is used
    return interpreter.get_signature_runner(SKIP["fuse"])(**x, **branches)[OUTPUT][0], ran


def save_npy(path: Path, bayer: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, bayer, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("images", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num-threads", type=int, default=4)
    p.add_argument("--normaliser", type=float, help="write uint16 round(units * normaliser) instead of float32")
    p.add_argument("--no-skip", action="store_true", help="run reverse_isp (both nets) even where the mask allows skipping")
    args = p.parse_args(argv)
    try:
        interpreter = load(args.model, args.num_threads)
        skip = can_skip(interpreter) and not args.no_skip
        args.out.mkdir(parents=True, exist_ok=True)
        for path in args.images:
            rgb = read_rgb(path)
            start = time.perf_counter()
            bayer, ran = run_skipping(interpreter, rgb) if skip else (run(interpreter, rgb), None)
            ms = 1000 * (time.perf_counter() - start)
            if args.normaliser:
                bayer = np.clip(np.round(bayer.astype(np.float64) * args.normaliser), 0, 65535).astype(np.uint16)
            save_npy(args.out / f"{path.stem}.npy", bayer)
            nets = "" if ran is None else f" (ran {' and '.join(ran)})"
            print(f"{path.name}: {rgb.shape[0]}x{rgb.shape[1]} -> {bayer.shape} {bayer.dtype} in {ms:.0f} ms{nets}")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
