"""Runs an exported reverse-ISP .tflite on images the way a phone does, and writes the bayer as .npy.

On-device inference reproduced: the LiteRT CPU interpreter with its default XNNPACK delegate,
`num_threads` threads, the `reverse_isp` signature of the model contract (mobile/README.md).
Needs only NumPy, OpenCV and `ai-edge-litert` (no TensorFlow), so the same file runs on x86 and
on ARM64 (mobile/arm64/).

    python mobile/run_litert.py MODEL.tflite IMAGE... --out DIR [--num-threads 4] [--normaliser 1024]
        [--no-skip] [--tile 512 --overlap 64 --margin 16 --align 16]

Each IMAGE (JPEG/PNG, 8- or 16-bit RGB, or an (H, W, 3) .npy of uint8/uint16/float in [0, 1])
becomes DIR/<stem>.npy: float32 (H/2, W/2, 4) packed RGGB in model units, or uint16 stored values
round(units * normaliser) with --normaliser (the AIM 2022 submission format).

- A static model takes images of its input size, in one pass. A dynamic one takes any even
  size; an image larger than --tile runs as overlapping tiles blended as `revisp_tf.infer.tiled`
  does, with its `revisp_tf.infer.tiling` (starts on multiples of --align, the U-Net's 2**depth; --margin px at inner edges weight 0).
- A global-stage model (inputs `rgb` and `context`) gets its context computed once per image, on
  the whole image (`revisp_tf.global_stage.context.frame_summary`), each tile its slice (`context_window`).
- A dual (mask-fusion) model carries the signatures `skip_mask`, `skip_oe`, `skip_noe` and
  `skip_fuse`: per tile the runner computes the mask first and runs the OE net only if a pixel
  of the tile's blended output region is overexposed (the NOE net only if one is not), then
  fuses, feeding zeros for the net it skipped; a tile that needs both runs `reverse_isp`. The
  output equals `reverse_isp`'s on every tile (--no-skip) to float rounding.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: its NumPy-only modules
from revisp_tf.export.litert import can_skip, input_shape, load, run, run_skipping, takes_context  # noqa: E402
from revisp_tf.global_stage import context as frame_context  # noqa: E402
from revisp_tf.infer import tiling  # noqa: E402
from revisp_tf.infer.tiling import DEFAULT_ALIGN as ALIGN, DEFAULT_OVERLAP as OVERLAP, DEFAULT_TILE as TILE, PAD_VALUE  # noqa: E402
from revisp_tf.io.atomic import atomic_write  # noqa: E402
from revisp_tf.io.images import read_rgb as read_image  # noqa: E402


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from an 8-/16-bit image file (the library's reader) or an .npy, or ValueError naming the file."""
    if path.suffix != ".npy":
        return read_image(path)
    try:
        img = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npy ({e})") from None
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"{path}: expected an (H, W, 3) RGB array, got shape {img.shape}")
    if img.dtype in (np.uint8, np.uint16):
        return img.astype(np.float32) / np.float32(np.iinfo(img.dtype).max)
    img = np.asarray(img, np.float32)
    if img.dtype.kind != "f" or not (img.min() >= 0.0 and img.max() <= 1.0):
        raise ValueError(f"{path}: expected uint8, uint16 or float values in [0, 1]")
    return img


@dataclasses.dataclass
class FrameRun:
    """What `run_frame` did: tiles per axis, tile extent, and how many tiles ran each net."""

    grid: tuple[int, int]
    extent: tuple[int, int]
    ran: dict

    def line(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in self.ran.items() if n)
        return f"{self.grid[0]}x{self.grid[1]} tiles of {self.extent[0]}x{self.extent[1]} ({counts})"


def run_frame(interpreter: Interpreter, rgb: np.ndarray, *, tile: int = TILE, overlap: int = OVERLAP,
              margin: int | None = None, align: int = ALIGN, skip: bool = True) -> tuple[np.ndarray, FrameRun]:
    """A whole frame (H, W, 3) through a dynamic model by overlapping tiles, as `revisp_tf.infer.tiled.TiledInference` does.

    The context (global-stage models) is the whole frame's, sliced per tile; tiles beyond the
    frame are filled with the U-Net's pad value 1.0. With `skip` (dual models) each tile runs
    only the nets its mask gives weight in the tile's blended output region.
    """
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"image {h}x{w}: expected even height and width (whole 2x2 CFA tiles)")
    if input_shape(interpreter) != (None, None) and max(h, w) > tile:
        raise ValueError(f"image {h}x{w}: tiling needs a dynamic model (export --dynamic); this one is static")
    margin = overlap // 8 * 2 if margin is None else margin
    tiling.check_tiling(tile, overlap, margin, align)
    ys, th = tiling.tile_starts(h, tile, overlap, align)
    xs, tw = tiling.tile_starts(w, tile, overlap, align)
    wy, wx = tiling.axis_weights(ys, th, margin), tiling.axis_weights(xs, tw, margin)
    summary = frame_context.frame_summary(rgb) if takes_context(interpreter) else None
    skip = skip and can_skip(interpreter)
    out = np.zeros((h // 2, w // 2, 4), np.float32)
    ran = {"oe+noe": 0, "noe": 0, "oe": 0} if skip else {"reverse_isp": 0}
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            ph, pw = min(th, h - y0), min(tw, w - x0)
            x = np.full((th, tw, 3), PAD_VALUE, np.float32)
            x[:ph, :pw] = rgb[y0 : y0 + ph, x0 : x0 + pw]
            context = None
            if summary is not None:
                context = np.full((th, tw, frame_context.CONTEXT_CHANNELS), PAD_VALUE, np.float32)
                context[:ph, :pw] = frame_context.context_window(summary, y0, x0, ph, pw)
            if skip:
                rows = tiling.blended(wy[i], h // 2 - y0 // 2)
                cols = tiling.blended(wx[j], w // 2 - x0 // 2)
                region = (slice(2 * rows.start, 2 * rows.stop), slice(2 * cols.start, 2 * cols.stop))
                pred, nets = run_skipping(interpreter, x, context, region)
                ran["+".join(nets)] += 1
            else:
                pred = run(interpreter, x, context)
                ran["reverse_isp"] += 1
            py, px = y0 // 2, x0 // 2
            weight = wy[i][: ph // 2, None, None] * wx[j][None, : pw // 2, None]
            out[py : py + ph // 2, px : px + pw // 2] += weight * pred[: ph // 2, : pw // 2]
    return out, FrameRun((len(ys), len(xs)), (th, tw), ran)


def save_npy(path: Path, bayer: np.ndarray) -> None:
    with atomic_write(path) as tmp:
        np.save(tmp, bayer, allow_pickle=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("images", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num-threads", type=int, default=4)
    p.add_argument("--normaliser", type=float, help="write uint16 round(units * normaliser) instead of float32")
    p.add_argument("--no-skip", action="store_true", help="run reverse_isp (both nets) even where the mask allows skipping")
    p.add_argument("--tile", type=int, default=TILE, help="largest tile side (px) for images larger than it (dynamic models)")
    p.add_argument("--overlap", type=int, default=OVERLAP, help="least overlap of neighbouring tiles (px)")
    p.add_argument("--margin", type=int, default=None, help="px at each inner tile edge with weight 0 [overlap/4]")
    p.add_argument("--align", type=int, default=ALIGN, help="tile starts' multiple: 2**depth of the U-Net [16]")
    args = p.parse_args(argv)
    try:
        interpreter = load(args.model, args.num_threads)
        skip = can_skip(interpreter) and not args.no_skip
        args.out.mkdir(parents=True, exist_ok=True)
        for path in args.images:
            rgb = read_rgb(path)
            start = time.perf_counter()
            static = input_shape(interpreter) != (None, None)
            if static or max(rgb.shape[:2]) <= args.tile:
                bayer, ran = run_skipping(interpreter, rgb) if skip else (run(interpreter, rgb), None)
                how = "" if ran is None else f" (ran {' and '.join(ran)})"
            else:
                bayer, plan = run_frame(interpreter, rgb, tile=args.tile, overlap=args.overlap, margin=args.margin,
                                        align=args.align, skip=skip)
                how = f" ({plan.line()})"
            ms = 1000 * (time.perf_counter() - start)
            if args.normaliser:
                bayer = np.clip(np.round(bayer.astype(np.float64) * args.normaliser), 0, 65535).astype(np.uint16)
            save_npy(args.out / f"{path.stem}.npy", bayer)
            print(f"{path.name}: {rgb.shape[0]}x{rgb.shape[1]} -> {bayer.shape} {bayer.dtype} in {ms:.0f} ms{how}")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
