"""Makes (RGB, RAW) pairs from every real RAW file in ../shared/realdata/raw with a real ISP, and checks them.

    python scripts/make_real_pairs.py --out /tmp/real_pairs [--isp libraw|darktable|rawtherapee]
        [--profile NAME_OR_PP3] [--patch 504] [--raw-dir DIR]

Per file it prints the mosaic size, the seconds make-pairs took (read, render, write), the
patches written (or why none), the share of overexposed pixels of the render (Y >= 0.978) and
the alignment check at shifts -2..2 px, whose best shift must be (0, 0). LibRaw: the linearised
RGB, divided by the white balance used and re-mosaiced, is correlated with the RAW
(`align.alignment_scores`). darktable's and RawTherapee's renders are not global functions of
the RAW, so their check correlates local gradients instead (`align.gradient_alignment_scores`).
The check runs on the written patches (scores averaged over them), or on the full render when
no patch fits; "margin" is the score at (0, 0) minus the best score elsewhere. RawTherapee's
render lacks a few border pixels: the line also gives where `align.locate_render` found it on
the mosaic, and that search's margin (meta.json "alignment").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from revisp_tf.realdata import realdata_dir
from revisp_tf.data import pairs  # noqa: E402
from revisp_tf.data.align import render as align  # noqa: E402
from revisp_tf.data.isps import ISPS, get_isp  # noqa: E402
from revisp_tf.data.isps.common import canonical_mosaic, white_balance  # noqa: E402
from revisp_tf.data.isps.libraw import libraw_version  # noqa: E402
from revisp_tf.data.raw_files import normalise, read_raw  # noqa: E402
from revisp_tf.io.images import read_raw_npy, read_rgb  # noqa: E402
from revisp_tf.isp.bayer import unpack  # noqa: E402
from revisp_tf.isp.mask import overexposure_mask  # noqa: E402

RAW_DIR = realdata_dir() / "raw"
_GRBG8 = {"shape": (1536, 2592), "dtype": "uint8", "cfa": "GRBG", "black": 12.5, "white": 255}
# Per-file read_raw arguments (from ../shared/realdata/README.md). "wb_ccm_from": the sensor's
# tuned Infinite-ISP config (WB gains, CCM in 1/1024); "color_matrix_from": a file of the same sensor.
FILES = {
    "huawei_p9/RAW_00242.dng": {"black": 0, "white": 1023},  # the DNG's own levels are placeholders
    "huawei_p9/RAW_00019.raw16": {
        "shape": (1080, 1920),
        "dtype": "<u2",
        "cfa": "RGGB",
        "black": 0,
        "white": 1023,
        "color_matrix_from": ("huawei_p9/RAW_00242.dng", {"black": 0, "white": 1023}),
    },
    "canon_550d/colorchart.dng": {},
    "infinite_isp_grbg8/Indoor1_2592x1536_8bit_GRBG.raw": {
        **_GRBG8,
        "wb_ccm_from": "infinite_isp_grbg8/Indoor1_2592x1536_10bit_GRBG-configs.yml",
    },
    "infinite_isp_grbg8/Outdoor1_2592x1536_8bit_GRBG.raw": {
        **_GRBG8,
        "wb_ccm_from": "infinite_isp_grbg8/Outdoor1_2592x1536_10bit_GRBG-configs.yml",
    },
    "infinite_isp_grbg8/Outdoor2_2592x1536_8bit_GRBG.raw": {
        **_GRBG8,
        "wb_ccm_from": "infinite_isp_grbg8/Outdoor2_2592x1536_10bit_GRBG-configs.yml",
    },
    "infinite_isp_grbg8/Outdoor4_2592x1536_8bit_GRBG.raw": {
        **_GRBG8,
        "wb_ccm_from": "infinite_isp_grbg8/Outdoor4_2592x1536_10bit_GRBG-configs.yml",
    },
    "nokia_n900/bayer_small.png": {"cfa": "GRBG", "black": 25, "white": 1023},
    "kodak_dc50/RAW_KODAK_DC50.KDC": {},
}


def infinite_isp_colour(config: Path) -> dict:
    """WB gains and camera -> sRGB CCM of an Infinite-ISP config file."""
    cfg = yaml.safe_load(config.read_text())
    wb, ccm = cfg["white_balance"], cfg["color_correction_matrix"]
    rows = [ccm[k] for k in ("corrected_red", "corrected_green", "corrected_blue")]
    return {"wb": (wb["r_gain"], 1.0, wb["b_gain"]), "color_matrix": np.array(rows, np.float64) / 1024.0}


def raw_kwargs(raw_dir: Path, spec: dict) -> dict:
    """read_raw arguments of one table entry, resolving the colour-data sources."""
    kw = {k: v for k, v in spec.items() if k not in ("wb_ccm_from", "color_matrix_from")}
    if "wb_ccm_from" in spec:
        kw.update(infinite_isp_colour(raw_dir / spec["wb_ccm_from"]))
    if "color_matrix_from" in spec:
        other, other_kw = spec["color_matrix_from"]
        kw["color_matrix"] = read_raw(raw_dir / other, **other_kw).color_matrix
    return kw


def alignment(isp: str, rgb: np.ndarray, raw: np.ndarray, wb) -> np.ndarray:
    """The alignment scores suited to the ISP's render."""
    if isp == "libraw":
        return align.alignment_scores(rgb, raw, wb)
    return align.gradient_alignment_scores(rgb, raw)


def margin(scores: np.ndarray) -> float:
    """Score at zero shift minus the best score elsewhere (> 0: zero shift wins)."""
    r = scores.shape[0] // 2
    return float(scores[r, r] - np.max(np.delete(scores.ravel(), scores.size // 2)))


def check_patches(out: Path, name: str, wb, isp: str) -> str:
    """Alignment scores averaged over a scene's written patches: best shift, and the share of patches best at 0."""
    scene = json.loads((out / pairs.META_NAME).read_text())["scenes"][name]
    scores = []
    for p in scene["patches"]:
        stem = out / f"{name}_{p['k']}"
        rgb = read_rgb(stem.with_suffix(f".{scene['rgb_format']}"))
        raw = np.asarray(unpack(read_raw_npy(stem.with_suffix(".npy"))))[..., 0]
        scores.append(alignment(isp, rgb, raw, wb))
    at_zero = np.mean([align.best_shift(s) == (0, 0) for s in scores])
    rows, cols = scene["grid"]
    mean = np.mean(scores, axis=0)
    return (
        f"{len(scores)} patches as {name}_k (grid {rows}x{cols}); overexposed {scene['overexposed']:.2%}; "
        f"best shift over the patches {align.best_shift(mean)} (margin {margin(mean):.3f}), "
        f"best at (0, 0) in {at_zero:.0%}{_located(scene)}"
    )


def _located(scene: dict) -> str:
    """Where a render that lost its border was found on the mosaic, if it had to be."""
    a = scene.get("alignment")
    if a is None:
        return ""
    h, w = a["rendered_shape"]
    return f"; render {w}x{h} found at offset {tuple(a['found_offset'])} (margin {a['margin']:.3f})"


def check_full_render(frame, wb, skipped: str, isp) -> str:
    """Overexposure and alignment of the full render of a file that gave no patch."""
    render = isp.render(frame)
    rgb, (oy, ox) = render.rgb, render.origin
    h, w = rgb.shape[:2]
    raw = canonical_mosaic(normalise(frame), frame.cfa)[oy : oy + h, ox : ox + w]
    oe = float(np.mean(overexposure_mask(rgb.astype(np.float32) / 255.0)))
    scores = alignment(isp.name, rgb, raw, wb)
    return (
        f"0 patches ({skipped}); overexposed {oe:.2%}; "
        f"best shift on the full render {align.best_shift(scores)} (margin {margin(scores):.3f})"
        + _located({"alignment": render.alignment})
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--patch", type=int, default=504)
    ap.add_argument("--raw-dir", type=Path, default=RAW_DIR)
    ap.add_argument("--isp", choices=ISPS, default="libraw")
    ap.add_argument("--profile", default=None, help="--isp rawtherapee: bundled profile name or .pp3 [Pop 2 Lab]")
    args = ap.parse_args(argv)
    raw_dir = args.raw_dir.resolve()
    files = sorted(p.relative_to(raw_dir).as_posix() for p in raw_dir.rglob("*") if p.is_file() and p.suffix != ".yml")
    unknown = sorted(set(files) - set(FILES))
    if unknown:
        print(f"no table entry for {unknown}: add them to FILES", file=sys.stderr)
        return 1
    isp = get_isp(args.isp, profile=args.profile)
    settings = isp.settings()
    version = {k: v for k, v in settings.items() if k.endswith("_version")}
    profile = settings["render"].get("profile")
    described = ", ".join(f"{k} {v}" for k, v in version.items()) + (f", profile {profile!r}" if profile else "")
    print(f"{args.isp}: {described or 'LibRaw'}; LibRaw {libraw_version()}, patch {args.patch}, out {args.out}")
    for rel in files:
        kw = raw_kwargs(raw_dir, FILES[rel])
        t0 = time.perf_counter()
        summary = pairs.make_pairs_from_raw(
            raw_dir / rel, args.out, args.patch, progress=False, isp=args.isp, profile=args.profile, **kw
        )
        secs = time.perf_counter() - t0
        (entry,) = summary["scenes"]
        frame = read_raw(raw_dir / rel, **kw)
        wb, wb_source = white_balance(frame)
        h, w = frame.mosaic.shape
        print(
            f"{rel}: {w}x{h} {frame.cfa}, black {frame.black[0]:g} white {frame.white:g}, "
            f"wb {wb_source} ({wb[0]:.3f}, 1, {wb[2]:.3f}), {secs:.1f} s"
        )
        result = (
            check_full_render(frame, wb, entry["skipped"], isp)
            if entry["skipped"]
            else check_patches(args.out, entry["scene"], wb, args.isp)
        )
        print(f"    {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
