"""(RGB, RAW) training pairs from real sensor RAW files, rendered by a real ISP (LibRaw via rawpy).

Each RAW file becomes one scene of patches in the AIM 2022 layout: `{scene}_{k}.jpg` (the
LibRaw sRGB render) beside `{scene}_{k}.npy` (packed canonical RGGB, uint16 in PROJECT_10BIT
stored units, see `raw_files`), `k = ncols * row + col` on a row-major grid, plus `meta.json`.

The render keeps what the method needs: camera white balance, sRGB primaries and curve, 8 bits,
highlights clipped (overexposed pixels are the point of the method), no auto-brightening and
no data-driven white point (LibRaw's `adjust_maximum_thr`), so its white is the sensor white
the RAW is normalised with. Files LibRaw cannot open (headerless, PNG mosaics) are rendered by
the same LibRaw settings from a temporary uncompressed DNG holding their normalised mosaic.

The RGB is written as JPEG quality 95 by default: the AIM layout names `.jpg`, and a camera's
RGB reaches a reverse ISP JPEG-compressed; `rgb_format="png"` keeps it lossless.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import rawpy
from absl import logging
from tqdm import tqdm

from revisp_tf.data.raw_files import RawFrame, RawReadError, normalise, read_raw, to_project_stored
from revisp_tf.io.dng import XYZ_TO_SRGB, write_dng
from revisp_tf.io.images import atomic_write, write_npy, write_rgb
from revisp_tf.isp.bayer import CANONICAL_CFA, cfa_shift, crop_to_pattern, mosaic, pack
from revisp_tf.isp.mask import overexposure_mask
from revisp_tf.isp.process import gray_world_gains
from revisp_tf.isp.sensor import PROJECT_10BIT

LIBRAW_SETTINGS = {
    "white_balance": "the file's camera gains (gray world where it has none), as user_wb",
    "output_color": "sRGB",
    "output_bps": 8,
    "gamma": (2.4, 12.92),  # the sRGB curve (LibRaw's default is BT.709's 2.222, 4.5)
    "no_auto_bright": True,
    "adjust_maximum_thr": 0.0,  # white = the sensor's white level, not the frame's brightest value
    "highlight_mode": "clip",
    "demosaic_algorithm": "AHD",
    "user_flip": 0,  # pixels as stored, aligned with the mosaic
}
# A temporary DNG stores the normalised mosaic at 16 bits: black 0, white 65535.
_DNG_LEVELS = (0, 65535)
RGB_FORMATS = ("jpg", "png")
META_NAME = "meta.json"


def _libraw_params(wb, **levels) -> rawpy.Params:
    """rawpy.Params of LIBRAW_SETTINGS with (R, G, B) white-balance gains, plus level overrides."""
    s = {k: v for k, v in LIBRAW_SETTINGS.items() if k != "white_balance"}
    s["output_color"] = rawpy.ColorSpace.sRGB
    s["highlight_mode"] = rawpy.HighlightMode.Clip
    s["demosaic_algorithm"] = rawpy.DemosaicAlgorithm.AHD
    return rawpy.Params(**s, user_wb=[wb[0], wb[1], wb[2], wb[1]], **levels)


def libraw_version() -> str:
    """Version of the LibRaw inside rawpy, e.g. '0.22.2'."""
    return ".".join(str(v) for v in rawpy.libraw_version)


def _level_overrides(frame: RawFrame, raw) -> dict:
    """user_black/user_cblack/user_sat making LibRaw use the frame's levels (overrides included)."""
    if not all(float(b).is_integer() for b in frame.black) or not float(frame.white).is_integer():
        raise RawReadError(
            f"{frame.source}: LibRaw takes whole-number levels, got black {frame.black}, white {frame.white}"
        )
    cblack = [0, 0, 0, 0]
    for b, c in zip(frame.black, raw.raw_colors_visible[:2, :2].ravel()):
        cblack[c] = int(b)
    # LibRaw's user_sat is the saturation after the common black has been subtracted.
    return {"user_black": 0, "user_cblack": cblack, "user_sat": int(frame.white - min(frame.black))}


def _render_file(frame: RawFrame) -> np.ndarray:
    """LibRaw render of the file itself, full visible size."""
    with rawpy.imread(str(frame.source)) as raw:
        return raw.postprocess(_libraw_params(white_balance(frame)[0], **_level_overrides(frame, raw)))


def _xyz_to_camera(color_matrix: np.ndarray | None) -> np.ndarray | None:
    """Camera -> sRGB matrix -> the DNG's XYZ -> camera matrix (None: camera RGB is linear sRGB)."""
    return None if color_matrix is None else np.linalg.solve(color_matrix, XYZ_TO_SRGB)


def white_balance(frame: RawFrame) -> tuple[tuple[float, float, float], str]:
    """(R, G, B) gains the render uses and where they come from: the frame's source, or gray world."""
    if frame.wb is not None:
        return frame.wb, frame.wb_source
    packed = pack(canonical_mosaic(normalise(frame), frame.cfa)[..., np.newaxis])
    gains = gray_world_gains(packed[np.newaxis])[0].numpy()
    return tuple(float(g) for g in gains), "gray_world"


def _render_via_dng(frame: RawFrame) -> np.ndarray:
    """LibRaw render of a temporary DNG holding the canonical crop of the normalised mosaic."""
    packed = pack(canonical_mosaic(normalise(frame), frame.cfa)[..., np.newaxis])
    wb, _ = white_balance(frame)
    with tempfile.TemporaryDirectory(prefix="revisp_make_pairs_") as tmp:
        dng = write_dng(
            Path(tmp) / "frame.dng", packed, _DNG_LEVELS, wb_gains=wb, color_matrix=_xyz_to_camera(frame.color_matrix)
        )
        with rawpy.imread(str(dng)) as raw:
            return raw.postprocess(_libraw_params(wb))


def canonical_mosaic(full: np.ndarray, cfa: str) -> np.ndarray:
    """Crops a full-resolution (H, W[, C]) array of a `cfa` mosaic to the canonical RGGB phase."""
    x = full[..., np.newaxis] if full.ndim == 2 else full
    out = crop_to_pattern(x, cfa, CANONICAL_CFA).numpy()
    return out[..., 0] if full.ndim == 2 else out


def render_libraw(source, **raw_kwargs) -> np.ndarray:
    """uint8 sRGB render (H', W', 3) aligned with `canonical_mosaic` of the file's mosaic.

    `source` is a RawFrame or a path read with `read_raw(path, **raw_kwargs)`.
    """
    frame = source if isinstance(source, RawFrame) else read_raw(source, **raw_kwargs)
    try:
        if frame.reader == "libraw":
            rgb = _render_file(frame)
            if rgb.shape[:2] != frame.mosaic.shape:
                raise RawReadError(
                    f"{frame.source}: LibRaw rendered {rgb.shape[:2]}, the mosaic is {frame.mosaic.shape}; cannot align"
                )
            return canonical_mosaic(rgb, frame.cfa)
        return _render_via_dng(frame)
    except rawpy.LibRawError as e:
        raise RawReadError(f"{frame.source}: LibRaw failed to render it ({type(e).__name__}: {e})") from None


def linearise_srgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] sRGB -> linear RGB (inverse sRGB curve), float64."""
    x = np.asarray(rgb, np.float64) / (255.0 if np.asarray(rgb).dtype == np.uint8 else 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def alignment_scores(rgb: np.ndarray, raw_rggb: np.ndarray, wb, max_shift: int = 2) -> np.ndarray:
    """Correlation of the RAW with the re-mosaiced, linearised RGB shifted by (dy, dx) in [-max_shift, max_shift].

    `rgb` (H, W, 3) sRGB and `raw_rggb` (H, W) canonical-phase mosaic cover the same pixels;
    entry [dy + max_shift, dx + max_shift] compares raw[y, x] with rgb[y + dy, x + dx].
    """
    m = 2 * ((max_shift + 1) // 2)  # an even margin keeps the RGGB phase
    h, w = raw_rggb.shape
    lin = linearise_srgb(rgb) / np.asarray(wb, np.float64)
    ref = np.asarray(pack(raw_rggb[m : h - m, m : w - m, np.newaxis])).ravel()
    scores = np.zeros((2 * max_shift + 1,) * 2)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            shifted = lin[m + dy : h - m + dy, m + dx : w - m + dx]
            scores[dy + max_shift, dx + max_shift] = np.corrcoef(ref, np.asarray(mosaic(shifted)).ravel())[0, 1]
    return scores


def best_shift(scores: np.ndarray) -> tuple[int, int]:
    """(dy, dx) of the highest score of `alignment_scores`."""
    r = scores.shape[0] // 2
    iy, ix = np.unravel_index(int(np.nanargmax(scores)), scores.shape)
    return int(iy) - r, int(ix) - r


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
    """A rendered file, cropped to the canonical phase."""

    frame: RawFrame
    rgb: np.ndarray  # (H', W', 3) uint8
    packed: np.ndarray  # (H'/2, W'/2, 4) uint16, PROJECT_10BIT stored units
    offset: tuple[int, int]  # (dy, dx) of the canonical crop in the source mosaic


def _prepare(path: Path, raw_kwargs: dict) -> _Scene:
    frame = read_raw(path, **raw_kwargs)
    rgb = render_libraw(frame)
    stored = canonical_mosaic(to_project_stored(frame), frame.cfa)
    if stored.shape != rgb.shape[:2]:
        raise RawReadError(
            f"{path}: render {rgb.shape[:2]} and mosaic {stored.shape} differ in size; cannot align them"
        )
    packed = np.asarray(pack(stored[..., np.newaxis])).astype(np.uint16)
    return _Scene(frame, rgb, packed, cfa_shift(frame.cfa, CANONICAL_CFA))


def _write_scene(s: _Scene, name: str, out_dir: Path, patch: int, stride: int, rgb_format: str) -> dict:
    """Writes the patches of one scene (at least one fits); returns its meta.json entry."""
    oe = np.asarray(overexposure_mask(s.rgb.astype(np.float32) / 255.0))[..., 0]
    wb, wb_source = white_balance(s.frame)
    patches = []
    for row, col, y, x in patch_grid(*s.rgb.shape[:2], patch, stride):
        k = len(patches)
        write_rgb(out_dir / f"{name}_{k}.{rgb_format}", s.rgb[y : y + patch, x : x + patch])
        write_npy(out_dir / f"{name}_{k}.npy", s.packed[y // 2 : (y + patch) // 2, x // 2 : (x + patch) // 2])
        share = float(oe[y : y + patch, x : x + patch].mean())
        patches.append(
            {"k": k, "row": row, "col": col, "y": y + s.offset[0], "x": x + s.offset[1], "overexposed": share}
        )
    return {
        "source": str(s.frame.source.resolve()),
        "sensor": s.frame.sensor_info(),
        "isp": "libraw" if s.frame.reader == "libraw" else "libraw (temporary DNG of the normalised mosaic)",
        "wb_used": list(wb),
        "wb_source": wb_source,
        "color_matrix_used": _matrix_used(s.frame),
        "canonical_offset": list(s.offset),
        "canonical_shape": list(s.rgb.shape[:2]),
        "patch": patch,
        "stride": stride,
        "grid": [patches[-1]["row"] + 1, patches[-1]["col"] + 1],
        "rgb_format": rgb_format,
        "overexposed": float(oe.mean()),
        "patches": patches,
    }


def _matrix_used(frame: RawFrame) -> str:
    """Which camera -> sRGB matrix the render applied."""
    if frame.reader == "libraw":
        return "LibRaw's for this file"
    if frame.color_matrix is None:
        return "none: camera RGB taken as linear sRGB"
    return f"the frame's ({frame.color_matrix_source})"


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
    **raw_kwargs,
) -> dict:
    """Renders RAW files with LibRaw and writes AIM 2022-layout (RGB, RAW) patch pairs plus meta.json.

    Args:
      raw_paths: one path or a list of paths (LibRaw formats, headerless mosaics, PNG mosaics).
      out_dir: output folder (created); an existing meta.json there is extended.
      patch: patch side in RGB pixels (even); the .npy is (patch/2, patch/2, 4).
      stride: grid step in pixels (even), default `patch` (no overlap).
      rgb_format: "jpg" (quality 95) or "png".
      skip_bad: log and skip files that cannot be read or rendered instead of raising.
      progress: show a progress bar.
      **raw_kwargs: `read_raw` arguments applied to every file (shape, dtype, cfa, black, white, wb, ...).

    Returns:
      {"out_dir", "patches" (total written), "scenes": [{"scene", "source", "patches",
      "overexposed", "skipped"}], "failed": [{"source", "error"}]}.
    Raises:
      RawReadError naming the file, for a bad file when `skip_bad` is False.
    """
    paths = [Path(raw_paths)] if isinstance(raw_paths, (str, Path)) else [Path(p) for p in raw_paths]
    if not paths:
        raise ValueError("raw_paths: expected at least one RAW file")
    stride = patch if stride is None else stride
    _check_sizes(patch, stride)
    if rgb_format not in RGB_FORMATS:
        raise ValueError(f"rgb_format: expected one of {', '.join(RGB_FORMATS)}, got {rgb_format!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = _read_meta(out_dir)
    meta.update(
        layout="AIM 2022 reverse ISP: {scene}_{k}.jpg (or .png) + {scene}_{k}.npy, packed RGGB (h, w, 4)",
        raw_units={
            "sensor": PROJECT_10BIT.name,
            "stored": "round(1023 * clip((raw - black) / (white - black), 0, 1)), uint16",
            "model_units": f"stored / {PROJECT_10BIT.normaliser:g}",
        },
        libraw_version=libraw_version(),
        rawpy_version=rawpy.__version__,
        render=dict(LIBRAW_SETTINGS),
    )
    summary = {"out_dir": str(out_dir), "patches": 0, "scenes": [], "failed": []}
    for path in tqdm(paths, desc="make-pairs", unit="file", disable=not progress):
        try:
            scene = _prepare(path, raw_kwargs)
        except RawReadError as e:
            if not skip_bad:
                raise
            logging.warning("skipping %s", e)
            summary["failed"].append({"source": str(path), "error": str(e)})
            continue
        h, w = scene.rgb.shape[:2]
        if min(h, w) < patch:
            reason = f"{h}x{w} after CFA alignment is smaller than one {patch}x{patch} patch"
            logging.warning("%s: no patches written: %s", path, reason)
            summary["scenes"].append(
                {"scene": None, "source": str(path), "patches": 0, "overexposed": None, "skipped": reason}
            )
            continue
        name = _unique_scene(scene_name(path), str(path.resolve()), meta["scenes"])
        entry = _write_scene(scene, name, out_dir, patch, stride, rgb_format)
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
            }
        )
    return summary
