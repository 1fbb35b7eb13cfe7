"""Checks DNGs written by `revisp_tf.io.write_dng` in real RAW editors: LibRaw, darktable, RawTherapee.

Two checks, each editor at its defaults (`revisp_tf.io.editors`):

- a real RAW (default: the Canon 550D chart in ../shared/realdata): its visible mosaic,
  normalised with the file's own levels and packed to RGGB, is written back with `write_dng`
  (levels, white balance and ColorMatrix1 copied from the source); LibRaw must read back the
  same stored values, and each editor's render of the written file is compared with its render
  of the source (PSNR).
- `--patches RGB...`: each image is reconstructed by the shipped model (or `--model`) and
  written as `revisp-tf infer --format dng` writes it (colour tags fitted to the image); prints
  each editor's chroma errors against the image (`color_fit.chroma_errors`: a*b* of the means
  and per pixel, after matching mean brightness), and with `--unfitted` also those of the old
  tags (ColorMatrix1 = XYZ -> sRGB, AsShotNeutral = 1).

    python scripts/check_dng_darktable.py
    python scripts/check_dng_darktable.py SOURCE.dng --out-dir DIR
    python scripts/check_dng_darktable.py --patches ../shared/realdata/aim22_s7_rgb/{6_27,10_13,48_24,78_39}.jpg --unfitted
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import rawpy  # noqa: E402
import tifffile  # noqa: E402

from revisp_tf.realdata import realdata_dir
from revisp_tf.io.dng import write_dng  # noqa: E402
from revisp_tf.io.editors import RENDERERS  # noqa: E402
from revisp_tf.io.images import read_rgb  # noqa: E402
from revisp_tf.isp.bayer import CANONICAL_CFA, cfa_shift, convert_pattern, pack  # noqa: E402
from revisp_tf.isp.color_fit import chroma_errors  # noqa: E402

REALDATA = realdata_dir()
DEFAULT_SOURCE = REALDATA / "raw" / "canon_550d" / "colorchart.dng"
_COLOR_MATRIX_1 = 50721


def source_pattern(raw) -> str:
    """CFA pattern of the visible mosaic, as a string like 'RGGB'."""
    return "".join(chr(raw.color_desc[raw.raw_pattern[r, c]]) for r, c in ((0, 0), (0, 1), (1, 0), (1, 1)))


def source_color_matrix(path: Path):
    """ColorMatrix1 (XYZ -> camera) of a DNG, or None if it has none."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags.get(_COLOR_MATRIX_1)
        value = None if tag is None else tag.value
    if value is None or len(value) != 18:
        return None
    v = np.asarray(value, np.float64)
    return (v[0::2] / v[1::2]).reshape(3, 3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two same-sized images in [0, 1]."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def render_all(dng: Path) -> dict:
    """{editor: (render or None, seconds, error message or '')} for every editor."""
    out = {}
    for name, render in RENDERERS.items():
        t0 = time.perf_counter()
        try:
            out[name] = (render(dng), time.perf_counter() - t0, "")
        except (FileNotFoundError, RuntimeError) as e:
            out[name] = (None, time.perf_counter() - t0, str(e))
    return out


def mean_rgb(rgb: np.ndarray) -> str:
    return " ".join(f"{v:.0f}" for v in rgb.reshape(-1, 3).mean(axis=0) * 255)


def check_source(source: Path, out_dir: Path) -> int:
    with rawpy.imread(str(source)) as raw:
        visible = raw.raw_image_visible.copy()
        pattern = source_pattern(raw)
        blacks, white = set(raw.black_level_per_channel), float(raw.white_level)
        wb = np.asarray(raw.camera_whitebalance[:3], np.float64)
    if len(blacks) != 1:
        print(f"per-channel black levels {sorted(blacks)} are not supported here", file=sys.stderr)
        return 2
    black = float(blacks.pop())
    h, w = visible.shape[0] // 2 * 2, visible.shape[1] // 2 * 2
    mosaic = visible[:h, :w].astype(np.float64)
    print(f"source {source.name}: visible {visible.shape[1]}x{visible.shape[0]}, CFA {pattern}, "
          f"black {black:g}, white {white:g}, camera WB {np.round(wb, 4).tolist()}")
    units = np.clip((mosaic - black) / (white - black), 0.0, 1.0).astype(np.float32)
    packed = convert_pattern(pack(units[..., None]), pattern, CANONICAL_CFA).numpy()
    color_matrix = source_color_matrix(source)
    dng = out_dir / "written.dng"
    t0 = time.perf_counter()
    write_dng(dng, packed, (black, white), cfa=pattern, wb_gains=wb / wb[1], color_matrix=color_matrix,
              camera_model="revisp-tf check")
    print(f"wrote {dng} ({dng.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.2f} s, "
          f"ColorMatrix1 {'from source' if color_matrix is not None else 'default XYZ->sRGB'}")
    with rawpy.imread(str(dng)) as raw:
        back = raw.raw_image_visible.copy()
        back_pattern = source_pattern(raw)
    # Converting to RGGB and back crops the source by 2 px per end of each shifted axis.
    dy, dx = (2 * s for s in cfa_shift(pattern, CANONICAL_CFA))
    expected = np.clip(mosaic, black, white)[dy : h - dy, dx : w - dx]
    print(f"LibRaw read-back: {back.shape[1]}x{back.shape[0]}, CFA {back_pattern}, "
          f"max |stored - clip(source)| = {np.abs(back - expected).max():g}, "
          f"clipped source samples {int(np.sum(expected != mosaic[dy : h - dy, dx : w - dx]))}")
    written, original = render_all(dng), render_all(source)
    for name in RENDERERS:
        (a, secs, err), (b, _, err_b) = written[name], original[name]
        if a is None or b is None:
            print(f"  {name:<12} FAILED: {err or err_b}")
            continue
        same = a.shape == b.shape
        print(f"  {name:<12} {a.shape[1]}x{a.shape[0]} in {secs:.1f} s, mean RGB written {mean_rgb(a)} / source "
              f"{mean_rgb(b)}" + (f", PSNR written vs source {psnr(a, b):.2f} dB" if same else ", sizes differ"))
    return 0


def check_patches(patches: list[Path], model_path, out_dir: Path, unfitted: bool) -> int:
    from revisp_tf.infer.files import reconstruct_files
    from revisp_tf.isp.sensor import SAMSUNG_S7
    from revisp_tf.models import load_reverse_isp
    from revisp_tf.weights import default_model_path

    model = load_reverse_isp(model_path or default_model_path())
    t0 = time.perf_counter()
    written = reconstruct_files(patches, model, out_dir, "dng", SAMSUNG_S7, progress=False)
    print(f"reconstructed and wrote {len(written)} DNG(s) in {out_dir} in {time.perf_counter() - t0:.1f} s")
    print("chroma error of the means / mean per-pixel a*b* error, after matching mean brightness:")
    print(f"  {'patch':<10}" + "".join(f"{name:>22}" for name in RENDERERS))
    for rgb_path, dng in zip(patches, written):
        rgb = read_rgb(rgb_path)
        variants = [("fitted", dng)]
        if unfitted:
            with rawpy.imread(str(dng)) as raw:
                stored = raw.raw_image_visible.astype(np.float32)
            packed = pack(stored[..., None] / np.float32(SAMSUNG_S7.normaliser)).numpy()
            variants.append(("unfitted", write_dng(out_dir / f"{dng.stem}_unfitted.dng", packed, SAMSUNG_S7)))
        for label, path in variants:
            cells = []
            for name, (render, _, err) in render_all(path).items():
                if render is None:
                    cells.append(f"{'skipped':>22}")
                    print(f"    {name}: {err}", file=sys.stderr)
                    continue
                e = chroma_errors(render, rgb)
                cells.append(f"{e.of_means:>14.1f} / {e.per_pixel:4.1f}")
            print(f"  {rgb_path.stem:<10}" + "".join(cells) + f"  ({label})")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--patches", nargs="+", type=Path, help="RGB images to reconstruct and check instead of a real RAW")
    ap.add_argument("--model", type=Path, default=None, help="with --patches: a .keras model (default: the shipped one)")
    ap.add_argument("--unfitted", action="store_true", help="with --patches: also the old colour tags (XYZ->sRGB, neutral 1)")
    ap.add_argument("--out-dir", type=Path, default=None, help="keep outputs here (default: a temporary directory)")
    args = ap.parse_args(argv)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="check_dng_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.patches:
        missing = [p for p in args.patches if not p.is_file()]
        if missing:
            print(f"RGB image not found: {missing[0]}", file=sys.stderr)
            return 2
        return check_patches(args.patches, args.model, out_dir, args.unfitted)
    if not args.source.is_file():
        print(f"source RAW not found: {args.source}", file=sys.stderr)
        return 2
    status = check_source(args.source, out_dir)
    print(f"outputs in {out_dir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
