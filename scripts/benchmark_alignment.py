"""Alignment error of `make-pairs --rgb` on camera JPEGs of known geometry, made from every real RAW file.

    python scripts/benchmark_alignment.py [--source libraw|rawtherapee] [--raw-dir DIR] [--files SUBSTR ...]

Each real RAW file of ../shared/realdata/raw (read as scripts/make_real_pairs.py reads it) is
rendered (LibRaw, or RawTherapee's "Pop 2 Lab" with its local tone mapping and vignette), then
turned into a "camera JPEG" by a known map (`align.CameraMap`: crop, scale, rotation, radial
distortion; `align.simulate_camera_rgb`) and JPEG-compressed. `isps.camera.CameraRgb` aligns it
back without knowing the map. The error is |fitted map(p) - known map(p)| in RAW px (divided by
the map's scale), over a 16 px grid of RAW pixels covering the whole frame wherever the known
map lands inside the JPEG. Prints one row per file and geometry, then the median and max over all.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from revisp_tf.data import align  # noqa: E402
from revisp_tf.data.isps import get_isp  # noqa: E402
from revisp_tf.data.isps.camera import CameraRgb  # noqa: E402
from revisp_tf.data.isps.common import canonical_mosaic  # noqa: E402
from revisp_tf.data.raw_files import RawReadError, read_raw  # noqa: E402

_HERE = Path(__file__).resolve().parent
# (name, scale, rotation in degrees, k1, k2, crop px on each side, JPEG quality)
GEOMETRIES = [
    ("crop", 1.0, 0.0, 0.0, 0.0, 24, 95),
    ("crop+scale 0.9", 0.9, 0.0, 0.0, 0.0, 10, 95),
    ("scale 0.75+rot 0.3", 0.75, 0.3, 0.0, 0.0, 8, 95),
    ("scale 0.95+rot -1.0", 0.95, -1.0, 0.0, 0.0, 20, 92),
    ("scale 0.9+rot 0.5+barrel", 0.9, 0.5, 0.03, 0.0, 16, 92),
    ("scale 0.8+rot 0.7+pincushion+q85", 0.8, 0.7, -0.02, 0.01, 16, 85),
    ("crop+scale 0.9+q85", 0.9, 0.0, 0.0, 0.0, 10, 85),
]


def _real_files():
    spec = importlib.util.spec_from_file_location("make_real_pairs", _HERE / "make_real_pairs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def known_map(raw_shape, scale: float, rot_deg: float, k1: float, k2: float, crop: int):
    """(map, JPEG shape): the RAW centre lands a few px off the JPEG centre, the JPEG crops `crop` px per side."""
    h, w = raw_shape
    base = align.identity_map(raw_shape)
    out = (round(h * scale) - 2 * crop, round(w * scale) - 2 * crop)
    t = np.radians(rot_deg)
    lin = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    centre_out = np.array([(out[1] - 1) / 2 - 3.3, (out[0] - 1) / 2 + 2.7])
    shift = centre_out - lin @ np.asarray(base.center)
    return align.CameraMap(np.c_[lin, shift], (k1, k2), base.center, base.norm), out


def map_error(fitted: align.CameraMap, truth: align.CameraMap, raw_shape, jpeg_shape) -> np.ndarray:
    """|fitted(p) - truth(p)| / scale, RAW px, on a 16 px grid where truth(p) lies inside the JPEG."""
    ys, xs = np.mgrid[0 : raw_shape[0] : 16, 0 : raw_shape[1] : 16]
    p = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
    q = truth(p)
    inside = (q[:, 0] >= 0) & (q[:, 1] >= 0) & (q[:, 0] <= jpeg_shape[1] - 1) & (q[:, 1] <= jpeg_shape[0] - 1)
    return np.linalg.norm(fitted(p[inside]) - q[inside], axis=-1) / truth.scale


def render_on_grid(frame, source: str) -> np.ndarray:
    """The source ISP's render on the whole canonical mosaic grid (RawTherapee's missing border reflected)."""
    r = get_isp(source).render(frame)
    rgb, (oy, ox) = r.rgb, r.origin
    h, w = canonical_mosaic(frame.mosaic, frame.cfa).shape
    return cv2.copyMakeBorder(rgb, oy, h - oy - rgb.shape[0], ox, w - ox - rgb.shape[1], cv2.BORDER_REFLECT)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("libraw", "rawtherapee"), default="libraw")
    ap.add_argument("--raw-dir", type=Path, default=_real_files().RAW_DIR)
    ap.add_argument("--files", nargs="*", default=None, help="only files whose path contains one of these")
    args = ap.parse_args(argv)
    table = _real_files()
    raw_dir = args.raw_dir.resolve()
    rels = [r for r in table.FILES if args.files is None or any(s in r for s in args.files)]
    print(f"source {args.source}; error = |fitted - known map| in RAW px over the frame (16 px grid)")
    print(f"{'file':52s} {'geometry':34s} {'median':>7s} {'p90':>6s} {'max':>6s} {'resid':>6s} {'sec':>5s}")
    errors = []
    with tempfile.TemporaryDirectory(prefix="revisp_align_bench_") as tmp:
        for rel in rels:
            frame = read_raw(raw_dir / rel, **table.raw_kwargs(raw_dir, table.FILES[rel]))
            rgb = render_on_grid(frame, args.source)
            for name, scale, rot, k1, k2, crop, quality in GEOMETRIES:
                truth, shape = known_map(rgb.shape[:2], scale, rot, k1, k2, crop)
                jpeg = Path(tmp) / "camera.jpg"
                cv2.imwrite(str(jpeg), align.simulate_camera_rgb(rgb, truth, shape)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
                t0 = time.perf_counter()
                try:
                    a = CameraRgb(jpeg).render(frame).alignment
                except RawReadError as e:
                    print(f"{rel:52s} {name:34s} refused: {str(e).split(': cannot align them: ')[-1]}")
                    errors.append(np.array([np.inf]))
                    continue
                secs = time.perf_counter() - t0
                fitted = align.CameraMap.from_json(a["map"])
                e = map_error(fitted, truth, rgb.shape[:2], shape)
                errors.append(e)
                print(
                    f"{rel:52s} {name:34s} {np.median(e):7.3f} {np.quantile(e, 0.9):6.3f} {e.max():6.3f} "
                    f"{a['residual_px']['median']:6.3f} {secs:5.1f}"
                )
    medians = [np.median(e) for e in errors]
    print(f"over {len(errors)} alignments: median of medians {np.median(medians):.3f} px, "
          f"worst median {np.max(medians):.3f} px, worst max {np.max([e.max() for e in errors]):.3f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
