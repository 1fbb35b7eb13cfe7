"""Alignment error of `make-pairs --rgb` on camera JPEGs of known geometry, made from every real RAW file.

    python scripts/benchmark_alignment.py [--bed opencv|rawtherapee] [--source libraw|rawtherapee]
                                          [--raw-dir DIR] [--files SUBSTR ...] [--geometries N ...]

Each real RAW file of ../shared/realdata/raw (read as scripts/make_real_pairs.py reads it) is made
into "camera JPEGs" of known geometry in one of two test beds:
- `--bed opencv` (default): rendered (`--source`: LibRaw, or RawTherapee's "Pop 2 Lab" with its
  local tone mapping and vignette), then warped by a known map (`warp.CameraMap`: crop, scale,
  rotation, radial distortion; `warp.simulate_camera_rgb`, bicubic) and JPEG-compressed by OpenCV;
- `--bed rawtherapee`: RawTherapee itself renders the JPEG ("Pop 2 Lab"), with its own [Crop],
  [Resize], [Rotation] and [Distortion] tools and its own JPEG encoder; the true map is
  `rawtherapee.Geometry.source` (RawTherapee's convention, measured: docs/alignment.md) from where
  RawTherapee's render without geometry lies on the mosaic (`render.locate_render`).
`isps.camera.CameraRgb` aligns each JPEG back without knowing the map. The error is |fitted map(p)
- true map(p)| in RAW px (divided by the map's scale), over the whole frame: a 16 px grid of RAW
pixels wherever the true map lands inside the JPEG (opencv), or a 16 px grid of JPEG pixels and the
RAW pixels they show (rawtherapee). Prints one row per file and geometry, then the median and max over all.
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

from revisp_tf.data.align import warp  # noqa: E402
from revisp_tf.data.isps import get_isp  # noqa: E402
from revisp_tf.data.isps import rawtherapee as rt  # noqa: E402
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

# RawTherapee's own tools: (name, [Resize] Scale, [Rotation] Degree, [Distortion] Amount, JPEG quality);
# the crop is the largest inside the image, 3 px right and 2 px up of centre (rt.inside_crop).
RT_GEOMETRIES = [
    ("rt crop", 1.0, 0.0, 0.0, 95),
    ("rt crop+resize 0.9", 0.9, 0.0, 0.0, 95),
    ("rt resize 0.75+rot 0.3", 0.75, 0.3, 0.0, 95),
    ("rt resize 0.95+rot -1.0", 0.95, -1.0, 0.0, 92),
    ("rt resize 0.9+rot 0.5+dist 0.05", 0.9, 0.5, 0.05, 92),
    ("rt resize 0.8+rot 0.7+dist -0.04+q85", 0.8, 0.7, -0.04, 85),
    ("rt crop+resize 0.9+q85", 0.9, 0.0, 0.0, 85),
]


def _real_files():
    spec = importlib.util.spec_from_file_location("make_real_pairs", _HERE / "make_real_pairs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def known_map(raw_shape, scale: float, rot_deg: float, k1: float, k2: float, crop: int):
    """(map, JPEG shape): the RAW centre lands a few px off the JPEG centre, the JPEG crops `crop` px per side."""
    h, w = raw_shape
    base = warp.identity_map(raw_shape)
    out = (round(h * scale) - 2 * crop, round(w * scale) - 2 * crop)
    t = np.radians(rot_deg)
    lin = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    centre_out = np.array([(out[1] - 1) / 2 - 3.3, (out[0] - 1) / 2 + 2.7])
    shift = centre_out - lin @ np.asarray(base.center)
    return warp.CameraMap(np.c_[lin, shift], (k1, k2), base.center, base.norm), out


def map_error(fitted: warp.CameraMap, truth: warp.CameraMap, raw_shape, jpeg_shape) -> np.ndarray:
    """|fitted(p) - truth(p)| / scale, RAW px, on a 16 px grid where truth(p) lies inside the JPEG."""
    ys, xs = np.mgrid[0 : raw_shape[0] : 16, 0 : raw_shape[1] : 16]
    p = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
    q = truth(p)
    inside = (q[:, 0] >= 0) & (q[:, 1] >= 0) & (q[:, 0] <= jpeg_shape[1] - 1) & (q[:, 1] <= jpeg_shape[0] - 1)
    return np.linalg.norm(fitted(p[inside]) - q[inside], axis=-1) / truth.scale


def rt_map_error(fitted: warp.CameraMap, geometry: rt.Geometry, image_shape, origin) -> np.ndarray:
    """|fitted(p) - q| / scale, RAW px, on a 16 px grid of JPEG pixels q, p = the mosaic pixel RawTherapee's geometry took q from."""
    oh, ow = geometry.output_shape()
    ys, xs = np.mgrid[0:oh:16, 0:ow:16]
    q = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
    p = geometry.source(q, image_shape) + np.array([origin[1], origin[0]], np.float64)
    return np.linalg.norm(fitted(p) - q, axis=-1) / geometry.scale


def render_on_grid(frame, source: str) -> np.ndarray:
    """The source ISP's render on the whole canonical mosaic grid (RawTherapee's missing border reflected)."""
    r = get_isp(source).render(frame)
    rgb, (oy, ox) = r.rgb, r.origin
    h, w = canonical_mosaic(frame.mosaic, frame.cfa).shape
    return cv2.copyMakeBorder(rgb, oy, h - oy - rgb.shape[0], ox, w - ox - rgb.shape[1], cv2.BORDER_REFLECT)


def _align(jpeg: Path, frame, rel: str, name: str):
    """(fitted map, residual median, seconds), or None after printing the refusal."""
    t0 = time.perf_counter()
    try:
        a = CameraRgb(jpeg).render(frame).alignment
    except RawReadError as e:
        print(f"{rel:52s} {name:38s} refused: {str(e).split(': cannot align them: ')[-1]}", flush=True)
        return None
    return warp.CameraMap.from_json(a["map"]), a["residual_px"]["median"], time.perf_counter() - t0


def opencv_cases(frame, source: str, tmp: Path, keep):
    """(name, JPEG, error function of the fitted map) of the OpenCV test bed."""
    rgb = render_on_grid(frame, source)
    for i, (name, scale, rot, k1, k2, crop, quality) in enumerate(GEOMETRIES):
        if not keep(i):
            continue
        truth, shape = known_map(rgb.shape[:2], scale, rot, k1, k2, crop)
        jpeg = tmp / "camera.jpg"
        cv2.imwrite(str(jpeg), warp.simulate_camera_rgb(rgb, truth, shape)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        yield name, jpeg, lambda fitted, truth=truth, shape=shape: map_error(fitted, truth, rgb.shape[:2], shape)


def rawtherapee_cases(frame, tmp: Path, keep):
    """(name, JPEG, error function of the fitted map) of the RawTherapee test bed."""
    isp = rt.RawTherapee()
    plain = isp.render_rgb(frame)
    origin = rt.place_render(frame, plain).alignment["found_offset"]  # (oy, ox) of RawTherapee's image on the mosaic
    for i, (name, scale, rot, amount, quality) in enumerate(RT_GEOMETRIES):
        if not keep(i):
            continue
        geometry = rt.inside_crop(plain.shape[:2], scale, rot, amount)
        jpeg = isp.render_file(frame, tmp / "camera.jpg", geometry, quality)
        got = cv2.imread(str(jpeg)).shape[:2]
        if got != geometry.output_shape():
            raise RuntimeError(f"RawTherapee wrote {got}, the geometry says {geometry.output_shape()}")
        yield name, jpeg, lambda fitted, g=geometry: rt_map_error(fitted, g, plain.shape[:2], origin)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bed", choices=("opencv", "rawtherapee"), default="opencv")
    ap.add_argument("--source", choices=("libraw", "rawtherapee"), default="libraw", help="the render the opencv bed warps")
    ap.add_argument("--raw-dir", type=Path, default=_real_files().RAW_DIR)
    ap.add_argument("--files", nargs="*", default=None, help="only files whose path contains one of these")
    ap.add_argument("--geometries", nargs="*", type=int, default=None, help="only these rows of the geometry table (0-based)")
    args = ap.parse_args(argv)
    table = _real_files()
    raw_dir = args.raw_dir.resolve()
    rels = [r for r in table.FILES if args.files is None or any(s in r for s in args.files)]
    keep = (lambda i: True) if args.geometries is None else (lambda i: i in args.geometries)
    grid = "16 px grid of RAW pixels" if args.bed == "opencv" else "16 px grid of JPEG pixels"
    what = f"bed {args.bed}" + (f", source {args.source}" if args.bed == "opencv" else ", RawTherapee Pop 2 Lab + its geometry tools + its JPEG")
    print(f"{what}; error = |fitted - known map| in RAW px over the frame ({grid})")
    print(f"{'file':52s} {'geometry':38s} {'median':>7s} {'p90':>6s} {'max':>6s} {'resid':>6s} {'sec':>5s}", flush=True)
    errors = []
    with tempfile.TemporaryDirectory(prefix="revisp_align_bench_") as tmp:
        for rel in rels:
            frame = read_raw(raw_dir / rel, **table.raw_kwargs(raw_dir, table.FILES[rel]))
            cases = opencv_cases(frame, args.source, Path(tmp), keep) if args.bed == "opencv" else rawtherapee_cases(frame, Path(tmp), keep)
            for name, jpeg, error_of in cases:
                found = _align(jpeg, frame, rel, name)
                if found is None:
                    errors.append(np.array([np.inf]))
                    continue
                fitted, resid, secs = found
                e = error_of(fitted)
                errors.append(e)
                print(
                    f"{rel:52s} {name:38s} {np.median(e):7.3f} {np.quantile(e, 0.9):6.3f} {e.max():6.3f} {resid:6.3f} {secs:5.1f}",
                    flush=True,
                )
    medians = [np.median(e) for e in errors]
    print(f"over {len(errors)} alignments: median of medians {np.median(medians):.3f} px, "
          f"worst median {np.max(medians):.3f} px, worst max {np.max([e.max() for e in errors]):.3f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
