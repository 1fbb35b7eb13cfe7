"""Writes a real RAW through `revisp_tf.io.write_dng` and renders it with darktable and LibRaw.

Reads a real DNG with rawpy, normalises its visible mosaic with the file's own black and white
levels, packs it to RGGB, writes it back with `write_dng` (levels, white balance and ColorMatrix1
copied from the source), then checks that LibRaw reads back the same stored values and that
darktable-cli and LibRaw both render it. Prints sizes and mean colours.

    python scripts/check_dng_darktable.py                       # ../shared/realdata Canon 550D chart
    python scripts/check_dng_darktable.py SOURCE.dng --out-dir DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import rawpy  # noqa: E402
import tifffile  # noqa: E402

from revisp_tf.io import read_rgb, write_dng, write_rgb  # noqa: E402
from revisp_tf.isp.bayer import CANONICAL_CFA, cfa_shift, convert_pattern, pack  # noqa: E402

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
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


def render_darktable(dng: Path, out: Path, workdir: Path) -> tuple[np.ndarray | None, float, str]:
    """darktable-cli render -> (RGB float image or None, seconds, log tail)."""
    cmd = ["darktable-cli", str(dng), str(out), "--core", "--configdir", str(workdir / "dt_config"),
           "--cachedir", str(workdir / "dt_cache"), "--library", ":memory:"]
    out.unlink(missing_ok=True)  # darktable would write out_01.jpg beside an existing file
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    secs = time.perf_counter() - t0
    log = (proc.stdout + proc.stderr).strip().splitlines()[-2:]
    return (read_rgb(out) if proc.returncode == 0 and out.is_file() else None), secs, " | ".join(log)


def render_rawpy(dng: Path) -> np.ndarray:
    """LibRaw render with the file's white balance, 8-bit sRGB as float in [0, 1]."""
    with rawpy.imread(str(dng)) as raw:
        return raw.postprocess(use_camera_wb=True).astype(np.float32) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two same-sized images in [0, 1]."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def describe(name: str, rgb: np.ndarray | None) -> None:
    if rgb is None:
        print(f"  {name:<34} FAILED")
        return
    mean = rgb.reshape(-1, 3).mean(axis=0)
    size = f"{rgb.shape[1]}x{rgb.shape[0]}"
    print(f"  {name:<34} {size}  mean RGB {mean[0]:.3f} {mean[1]:.3f} {mean[2]:.3f}  std {rgb.std():.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out-dir", type=Path, default=None, help="keep outputs here (default: a temporary directory)")
    args = ap.parse_args(argv)
    if not args.source.is_file():
        print(f"source RAW not found: {args.source}", file=sys.stderr)
        return 2
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="check_dng_"))
    out_dir.mkdir(parents=True, exist_ok=True)

    with rawpy.imread(str(args.source)) as raw:
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
    print(f"source {args.source.name}: visible {visible.shape[1]}x{visible.shape[0]}, CFA {pattern}, "
          f"black {black:g}, white {white:g}, camera WB {np.round(wb, 4).tolist()}")

    units = np.clip((mosaic - black) / (white - black), 0.0, 1.0).astype(np.float32)
    packed = convert_pattern(pack(units[..., None]), pattern, CANONICAL_CFA).numpy()
    color_matrix = source_color_matrix(args.source)
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
    print("renders:")
    libraw = {"source": render_rawpy(args.source), "written": render_rawpy(dng)}
    for name, rgb in libraw.items():
        describe(f"LibRaw, {name} DNG", rgb)
    print(f"  LibRaw written vs source: PSNR {psnr(libraw['written'], libraw['source']):.2f} dB")
    if shutil.which("darktable-cli") is None:
        print("  darktable-cli not on PATH: skipped (Debian: apt-get install -y darktable)")
        return 0
    darktable = {}
    for name, path in (("written", dng), ("source", args.source)):
        rgb, secs, log = render_darktable(path, out_dir / f"darktable_{name}.jpg", out_dir)
        describe(f"darktable, {name} DNG ({secs:.1f} s)", rgb)
        if rgb is None:
            print(f"    darktable log: {log}")
        darktable[name] = rgb
    if all(v is not None and v.shape == darktable["written"].shape for v in darktable.values()):
        print(f"  darktable written vs source: PSNR {psnr(darktable['written'], darktable['source']):.2f} dB")
    preview = out_dir / "rawpy_written.jpg"
    write_rgb(preview, libraw["written"])
    print(f"outputs in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
