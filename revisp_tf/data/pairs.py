"""(RGB, RAW) training pairs from real sensor RAW files, rendered by a real ISP.

Each RAW file becomes one scene of patches in the AIM 2022 layout: `{scene}_{k}.jpg` (the
ISP's sRGB render) beside `{scene}_{k}.npy` (packed canonical RGGB, uint16 in PROJECT_10BIT
stored units, see `raw_files`), `k = ncols * row + col` on a row-major grid, plus `meta.json`.

The ISPs (LibRaw, darktable, RawTherapee, Infinite-ISP) live in `revisp_tf.data.isps`, one module each; each
renders a frame onto the canonical mosaic grid (RawTherapee's render lacks a few border pixels
and is located by `revisp_tf.data.align`), and the mosaic is cropped to what the render shows,
never resampled. The RGB is written as JPEG at the ISP's quality (95; RawTherapee 92, as a
phone writes it) by default: the AIM layout names `.jpg`, and a camera's RGB reaches a reverse
ISP JPEG-compressed; `rgb_format="png"` keeps it lossless.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import rawpy
from absl import logging
from tqdm import tqdm

from revisp_tf.choices import RGB_FORMATS
from revisp_tf.data.isps import get_isp
from revisp_tf.data.isps.camera import EMBEDDED, CameraRgb
from revisp_tf.data.isps.common import Render, canonical_mosaic, white_balance
from revisp_tf.data.isps.libraw import libraw_version
from revisp_tf.data.layout import META_NAME, RGB_SUFFIXES
from revisp_tf.data.raw_files import RawFrame, RawReadError, read_raw, to_project_stored
from revisp_tf.io.atomic import atomic_write
from revisp_tf.io.images import write_npy, write_rgb
from revisp_tf.isp.bayer import CANONICAL_CFA, cfa_shift, pack
from revisp_tf.isp.mask import overexposure_mask
from revisp_tf.isp.sensor import PROJECT_10BIT


def scene_name(path) -> str:
    """File stem with anything but letters, digits, '.' and '-' replaced by '-' (so `{scene}_{k}` parses)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", Path(path).stem).strip("-.") or "scene"


def patch_grid(height: int, width: int, patch: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(row, col, y, x) of every whole patch on a grid from (0, 0), row-major."""
    ys = range(0, height - patch + 1, stride)
    xs = range(0, width - patch + 1, stride)
    return [(r, c, y, x) for r, y in enumerate(ys) for c, x in enumerate(xs)]


def _check_sizes(patch: int, stride: int) -> None:
    for name, v in (("patch", patch), ("stride", stride)):
        if int(v) != v or v <= 0 or v % 2:
            raise ValueError(f"{name}: expected a positive even number of pixels (whole 2x2 CFA tiles), got {v}")


def _read_meta(out_dir: Path) -> dict:
    """The existing meta.json of `out_dir`, or an empty one."""
    path = out_dir / META_NAME
    if not path.exists():
        return {"scenes": {}}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read it as JSON ({e}); expected the meta.json make-pairs writes") from None
    if not isinstance(meta.get("scenes"), dict):
        raise ValueError(f"{path}: no 'scenes' mapping; expected the meta.json make-pairs writes")
    return meta


def _write_meta(out_dir: Path, meta: dict) -> None:
    with atomic_write(out_dir / META_NAME) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


def _unique_scene(base: str, source: str, scenes: dict) -> str:
    """`base`, or `base-2`, `base-3`, ... if another source already uses it."""
    name, i = base, 2
    while name in scenes and scenes[name]["source"] != source:
        name, i = f"{base}-{i}", i + 1
    return name


@dataclasses.dataclass
class _Scene:
    """A rendered file and the part of its canonical mosaic the render shows."""

    frame: RawFrame
    render: Render  # rgb (H', W', 3) uint8 and its origin on the canonical mosaic
    packed: np.ndarray  # (H'/2, W'/2, 4) uint16, PROJECT_10BIT stored units, under the render
    offset: tuple[int, int]  # (dy, dx) of the canonical crop in the source mosaic
    canonical_shape: tuple[int, int]


def _prepare(path: Path, raw_kwargs: dict, isp) -> _Scene:
    frame = read_raw(path, **raw_kwargs)
    render = isp.render(frame)
    stored = canonical_mosaic(to_project_stored(frame), frame.cfa)
    (oy, ox), (h, w) = render.origin, render.rgb.shape[:2]
    if oy % 2 or ox % 2 or oy + h > stored.shape[0] or ox + w > stored.shape[1]:
        raise RawReadError(
            f"{path}: render {h}x{w} at {render.origin} does not lie on the mosaic {stored.shape} in RGGB phase"
        )
    packed = np.asarray(pack(stored[oy : oy + h, ox : ox + w, np.newaxis])).astype(np.uint16)
    return _Scene(frame, render, packed, cfa_shift(frame.cfa, CANONICAL_CFA), stored.shape)


def _write_scene(s: _Scene, isp, name: str, out_dir: Path, patch: int, stride: int, rgb_format: str, quality: int) -> dict:
    """Writes the patches of one scene (at least one fits); returns its meta.json entry."""
    rgb, (oy, ox) = s.render.rgb, s.render.origin
    oe = np.asarray(overexposure_mask(rgb.astype(np.float32) / 255.0))[..., 0]
    wb, wb_source = white_balance(s.frame)
    patches = []
    for row, col, y, x in patch_grid(*rgb.shape[:2], patch, stride):
        k = len(patches)
        write_rgb(out_dir / f"{name}_{k}.{rgb_format}", rgb[y : y + patch, x : x + patch], jpeg_quality=quality)
        write_npy(out_dir / f"{name}_{k}.npy", s.packed[y // 2 : (y + patch) // 2, x // 2 : (x + patch) // 2])
        share = float(oe[y : y + patch, x : x + patch].mean())
        in_source = {"y": y + oy + s.offset[0], "x": x + ox + s.offset[1]}
        patches.append({"k": k, "row": row, "col": col, **in_source, "overexposed": share})
    described = isp.describe(s.frame)
    return {
        "source": str(s.frame.source.resolve()),
        "sensor": s.frame.sensor_info(),
        "isp": described["isp"],
        "wb_used": list(wb),
        "wb_source": wb_source,
        "color_matrix_used": described["color_matrix_used"],
        "canonical_offset": list(s.offset),
        "canonical_shape": list(s.canonical_shape),
        "render_origin": [oy, ox],
        "render_shape": list(rgb.shape[:2]),
        "alignment": s.render.alignment,
        "capture": None if s.render.capture is None else s.render.capture.to_json(),
        "patch": patch,
        "stride": stride,
        "grid": [patches[-1]["row"] + 1, patches[-1]["col"] + 1],
        "rgb_format": rgb_format,
        "jpeg_quality": quality if rgb_format == "jpg" else None,
        "overexposed": float(oe.mean()),
        "patches": patches,
    }




def _camera_rgbs(paths: list[Path], rgb, rgb_dir) -> list | None:
    """One CameraRgb per RAW file from `rgb` (paths or "embedded") or `rgb_dir` (by stem); None if neither."""
    if rgb is not None and rgb_dir is not None:
        raise ValueError("rgb, rgb_dir: give one of them")
    if rgb is None and rgb_dir is None:
        return None
    if rgb == EMBEDDED or list(rgb or ()) == [EMBEDDED]:
        return [CameraRgb(EMBEDDED) for _ in paths]
    if rgb_dir is not None:
        folder = Path(rgb_dir)
        if not folder.is_dir():
            raise ValueError(f"rgb_dir: {folder} is not a folder")
        by_stem = {}
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in RGB_SUFFIXES:
                by_stem.setdefault(f.stem, []).append(f)
        rgb = []
        for p in paths:
            found = by_stem.get(p.stem, [])
            if len(found) != 1:
                what = "no" if not found else f"{len(found)} ({', '.join(f.name for f in found)})"
                raise ValueError(f"{p}: {what} RGB files named {p.stem}.jpg/.jpeg/.png in {folder}; expected one")
            rgb.append(found[0])
    rgb = [rgb] if isinstance(rgb, (str, Path)) else list(rgb)
    if len(rgb) != len(paths):
        raise ValueError(f"rgb: expected one RGB file per RAW file ({len(paths)}), got {len(rgb)}")
    for f in rgb:
        if not Path(f).is_file():
            raise ValueError(f"{f}: no such RGB file")
    return [CameraRgb(f) for f in rgb]


def _isp_meta(isp) -> dict:
    """meta.json entries naming the ISP, its version and settings (LibRaw reads the files either way)."""
    return {"isp": isp.name, "libraw_version": libraw_version(), "rawpy_version": rawpy.__version__, **isp.settings()}


def _check_same_isp(meta: dict, isp_meta: dict, out_dir: Path) -> None:
    """ValueError if `out_dir` already holds scenes another ISP (or profile) rendered: one meta.json describes one."""
    old = (meta.get("isp", "libraw"), meta.get("render", {}).get("profile"))
    new = (isp_meta["isp"], isp_meta["render"].get("profile"))
    if meta["scenes"] and old != new:
        raise ValueError(f"{out_dir}: holds pairs rendered by {_label(*old)}; write {_label(*new)} pairs to another folder")


def _alignment_summary(a: dict | None) -> str | None:
    """One line on how a camera RGB was aligned (None for an ISP's render)."""
    if a is None or "map" not in a:
        return None
    m, r = a["map"], a["residual_px"]
    h, w = a["rgb_shape"]
    return (
        f"{a['rgb']} ({w}x{h}, EXIF orientation {a['rgb_exif_orientation']}) aligned: scale {m['scale']:.4f}, "
        f"rotation {m['rotation_deg']:.2f} deg, k1 {m['k1']:.4f}, k2 {m['k2']:.4f}, k_r {m.get('k_r', 0.0):.4f}; residual {r['median']:.2f} px median, "
        f"{r['p90']:.2f} px 90th percentile over {r['tiles']} tiles; {a['overlap']:.0%} of the RAW frame kept"
    )


def _label(isp: str, profile: str | None) -> str:
    return isp if profile is None else f"{isp} profile {profile!r}"


def _remove_stale(out_dir: Path, name: str, old: dict | None, new: dict) -> None:
    """Deletes files an earlier run wrote for this scene that this run did not overwrite."""
    if old is None:
        return
    n, old_fmt = len(new["patches"]), old.get("rgb_format", "jpg")
    for p in old.get("patches", []):
        if p["k"] >= n:
            (out_dir / f"{name}_{p['k']}.npy").unlink(missing_ok=True)
        if p["k"] >= n or old_fmt != new["rgb_format"]:
            (out_dir / f"{name}_{p['k']}.{old_fmt}").unlink(missing_ok=True)


def make_pairs_from_raw(
    raw_paths,
    out_dir,
    patch: int = 504,
    stride: int | None = None,
    *,
    rgb_format: str = "jpg",
    skip_bad: bool = False,
    progress: bool = True,
    isp: str | None = None,
    profile: str | None = None,
    jpeg_quality: int | None = None,
    rgb=None,
    rgb_dir=None,
    **raw_kwargs,
) -> dict:
    """Renders RAW files with a real ISP, or aligns the camera's own RGB, and writes AIM 2022-layout pairs plus meta.json.

    Args:
      raw_paths: one path or a list of paths (LibRaw formats, headerless mosaics, PNG mosaics).
      out_dir: output folder (created); an existing meta.json there is extended.
      patch: patch side in RGB pixels (even); the .npy is (patch/2, patch/2, 4).
      stride: grid step in pixels (even), default `patch` (no overlap).
      rgb_format: "jpg" or "png".
      skip_bad: log and skip files that cannot be read or rendered instead of raising.
      progress: show a progress bar.
      isp: one of `isps.ISPS` (default "libraw"): "libraw" (rawpy), "darktable" (darktable-cli,
        scene-referred filmic), "rawtherapee" (rawtherapee-cli with a profile) or "infinite-isp"
        (the sensor's tuned Infinite-ISP, with its 3A); see their modules.
      profile: rawtherapee: a bundled profile name (default "Pop 2 Lab") or a .pp3 path;
        infinite-isp: the sensor's config .yml (required).
      jpeg_quality: of the .jpg RGB; default the ISP's (95, rawtherapee 92).
      rgb: instead of an ISP, the camera's own RGB of each RAW file (`isps.camera`): a list of
        JPEG/PNG paths in the order of `raw_paths`, or "embedded" (each RAW's preview JPEG).
      rgb_dir: instead of `rgb`, a folder holding each RAW's RGB under the same stem (IMG_1.dng <-> IMG_1.jpg).
      **raw_kwargs: `read_raw` arguments applied to every file (shape, dtype, cfa, black, white, wb, ...).

    Returns:
      {"out_dir", "patches" (total written), "scenes": [{"scene", "source", "patches",
      "overexposed", "skipped"}], "failed": [{"source", "error"}]}.
    Raises:
      RawReadError naming the file (both files for a camera RGB that cannot be aligned), for a
        bad file or pair when `skip_bad` is False.
      FileNotFoundError if the ISP's command line tool (darktable-cli, rawtherapee-cli) is not installed.
    """
    paths = [Path(raw_paths)] if isinstance(raw_paths, (str, Path)) else [Path(p) for p in raw_paths]
    if not paths:
        raise ValueError("raw_paths: expected at least one RAW file")
    stride = patch if stride is None else stride
    _check_sizes(patch, stride)
    if rgb_format not in RGB_FORMATS:
        raise ValueError(f"rgb_format: expected one of {', '.join(RGB_FORMATS)}, got {rgb_format!r}")
    cameras = _camera_rgbs(paths, rgb, rgb_dir)
    if cameras is not None and (isp is not None or profile is not None):
        raise ValueError("isp, profile: the camera's own RGB is given (rgb or rgb_dir), so no ISP renders one")
    # an unknown ISP or profile, a missing tool: fail before writing
    isp = cameras[0] if cameras else get_isp(isp or "libraw", profile=profile)
    isp_meta = _isp_meta(isp)
    quality = isp.jpeg_quality if jpeg_quality is None else int(jpeg_quality)
    if not 1 <= quality <= 100:
        raise ValueError(f"jpeg_quality: expected 1 to 100, got {jpeg_quality}")
    out_dir = Path(out_dir)  # created with the first scene written: a refused first file leaves nothing
    meta = _read_meta(out_dir)
    _check_same_isp(meta, isp_meta, out_dir)
    if not meta["scenes"]:
        meta = {"scenes": {}}  # nothing to keep, not even another ISP's version and settings
    meta.update(
        layout="AIM 2022 reverse ISP: {scene}_{k}.jpg (or .png) + {scene}_{k}.npy, packed RGGB (h, w, 4)",
        raw_units={
            "sensor": PROJECT_10BIT.name,
            "stored": "round(1023 * clip((raw - black) / (white - black), 0, 1)), uint16",
            "model_units": f"stored / {PROJECT_10BIT.normaliser:g}",
        },
        **isp_meta,
    )
    summary = {"out_dir": str(out_dir), "patches": 0, "scenes": [], "failed": []}
    # disable=None: tqdm draws its bar only on a terminal, so a log or a pipe gets just the report lines
    for i, path in enumerate(tqdm(paths, desc="make-pairs", unit="file", disable=None if progress else True)):
        if cameras:
            isp = cameras[i]
        try:
            scene = _prepare(path, raw_kwargs, isp)
        except RawReadError as e:
            if not skip_bad:
                raise
            logging.warning("skipping %s", e)
            summary["failed"].append({"source": str(path), "error": str(e)})
            continue
        h, w = scene.render.rgb.shape[:2]
        if min(h, w) < patch:
            reason = f"{h}x{w} after CFA alignment is smaller than one {patch}x{patch} patch"
            logging.warning("%s: no patches written: %s", path, reason)
            summary["scenes"].append(
                {"scene": None, "source": str(path), "patches": 0, "overexposed": None, "skipped": reason}
            )
            continue
        name = _unique_scene(scene_name(path), str(path.resolve()), meta["scenes"])
        out_dir.mkdir(parents=True, exist_ok=True)
        entry = _write_scene(scene, isp, name, out_dir, patch, stride, rgb_format, quality)
        _remove_stale(out_dir, name, meta["scenes"].get(name), entry)
        meta["scenes"][name] = entry
        _write_meta(out_dir, meta)
        summary["patches"] += len(entry["patches"])
        summary["scenes"].append(
            {
                "scene": name,
                "source": str(path),
                "patches": len(entry["patches"]),
                "overexposed": entry["overexposed"],
                "skipped": None,
                "aligned": _alignment_summary(entry["alignment"]),
            }
        )
    return summary
