"""(RGB, RAW) training pairs from real sensor RAW files, rendered by a real ISP (LibRaw or darktable).

Each RAW file becomes one scene of patches in the AIM 2022 layout: `{scene}_{k}.jpg` (the
ISP's sRGB render) beside `{scene}_{k}.npy` (packed canonical RGGB, uint16 in PROJECT_10BIT
stored units, see `raw_files`), `k = ncols * row + col` on a row-major grid, plus `meta.json`.

The render keeps what the method needs: camera white balance, sRGB primaries and curve, 8 bits,
highlights clipped (overexposed pixels are the point of the method), no auto-brightening and
no data-driven white point (LibRaw's `adjust_maximum_thr`), so its white is the sensor white
the RAW is normalised with. Files LibRaw cannot open (headerless, PNG mosaics) are rendered by
the same LibRaw settings from a temporary uncompressed DNG holding their normalised mosaic.

`isp="darktable"` renders every file with `darktable-cli` (Debian package `darktable`): its
default scene-referred pipeline (exposure +0.7 EV, filmic rgb) is far more phone-like than
LibRaw's plain render and far from a global function of the RAW. darktable's decoder refuses
some DNGs LibRaw reads, so it always renders the temporary DNG. In darktable 4.2 the default
pipe of that DNG is rawprepare, temperature, highlights, demosaic, exposure, colorin, filmic rgb,
colorout, gamma: nothing moves pixels (no flip, lens correction or crop); the size check and
`gradient_alignment_scores` guard that. Filmic rolls highlights off: sensor white renders at
about 234/255, under the overexposure threshold, so darktable pairs have far fewer overexposed
pixels than LibRaw's (only reconstructed highlights brighter than sensor white reach it).

The RGB is written as JPEG quality 95 by default: the AIM layout names `.jpg`, and a camera's
RGB reaches a reverse ISP JPEG-compressed; `rgb_format="png"` keeps it lossless.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import rawpy
from absl import logging
from tqdm import tqdm

from revisp_tf.data.raw_files import RawFrame, RawReadError, normalise, read_raw, to_project_stored
from revisp_tf.io.dng import XYZ_TO_SRGB, write_dng
from revisp_tf.io.images import ImageReadError, atomic_write, read_rgb, write_npy, write_rgb
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
DARKTABLE_SETTINGS = {
    "input": "temporary uncompressed DNG (revisp_tf.io.dng.write_dng) of the normalised canonical RGGB mosaic",
    "white_balance": "the file's camera gains (gray world where it has none), as the DNG's AsShotNeutral",
    "color_matrix": "the frame's camera -> sRGB matrix as ColorMatrix1 (XYZ -> sRGB where it has none)",
    "presets": "none: fresh config dir, --library :memory:, --apply-custom-presets false",
    "output": "8-bit sRGB PNG (--icc-type SRGB), full size: --width 0 --height 0 --upscale false --hq true",
}
DARKTABLE_MISSING = "darktable-cli not found: install Debian's darktable"
_DARKTABLE_TIMEOUT_S = 600
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


def _write_frame_dng(frame: RawFrame, path: Path) -> Path:
    """Uncompressed DNG of the canonical crop of the normalised mosaic, with the render's WB and colour matrix."""
    packed = pack(canonical_mosaic(normalise(frame), frame.cfa)[..., np.newaxis])
    wb, _ = white_balance(frame)
    return write_dng(path, packed, _DNG_LEVELS, wb_gains=wb, color_matrix=_xyz_to_camera(frame.color_matrix))


def _render_via_dng(frame: RawFrame) -> np.ndarray:
    """LibRaw render of a temporary DNG holding the canonical crop of the normalised mosaic."""
    with tempfile.TemporaryDirectory(prefix="revisp_make_pairs_") as tmp:
        dng = _write_frame_dng(frame, Path(tmp) / "frame.dng")
        with rawpy.imread(str(dng)) as raw:
            return raw.postprocess(_libraw_params(white_balance(frame)[0]))


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


def darktable_cli() -> str:
    """Path of darktable-cli, or FileNotFoundError saying how to get it."""
    exe = shutil.which("darktable-cli")
    if exe is None:
        raise FileNotFoundError(DARKTABLE_MISSING)
    return exe


@functools.lru_cache(maxsize=None)
def _version_of(exe: str) -> str:
    """Version printed by `exe --version` (asked once per executable)."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"darktable-cli (\S+)", out)
    if m is None:
        raise RuntimeError(f"{exe} --version printed no version: {out.strip()[:200]!r}")
    return m.group(1)


def darktable_version() -> str:
    """Version of the installed darktable-cli, e.g. '4.2.1'."""
    return _version_of(darktable_cli())


def darktable_conf(version: str) -> dict[str, str]:
    """darktable-cli --conf settings: scene-referred workflow with filmic rgb, 8-bit PNG, no sidecar files.

    Pinned so the render does not depend on a user's darktablerc. darktable 4.2 calls the workflow
    "scene-referred" (exposure +0.7 EV and filmic rgb) and sets chromatic adaptation apart (its
    default "legacy": the white balance module applies AsShotNeutral); from 4.4 the workflow names
    its tone mapper (5.x defaults to sigmoid) and adapts with color calibration.
    """
    output = {"plugins/imageio/format/png/bpp": "8", "write_sidecar_files": "never"}
    if tuple(int(v) for v in re.findall(r"\d+", version)[:2]) < (4, 4):
        workflow = {"plugins/darkroom/workflow": "scene-referred", "plugins/darkroom/chromatic-adaptation": "legacy"}
    else:
        workflow = {"plugins/darkroom/workflow": "scene-referred (filmic)"}
    return {**workflow, **output}


def darktable_command(dng: Path, out: Path, workdir: Path, version: str) -> list[str]:
    """darktable-cli command rendering `dng` to the PNG `out` with DARKTABLE_SETTINGS, its state in `workdir`."""
    export = ["--width", "0", "--height", "0", "--upscale", "false", "--hq", "true", "--icc-type", "SRGB"]
    state = ["--configdir", str(workdir / "config"), "--cachedir", str(workdir / "cache"), "--tmpdir", str(workdir)]
    conf = [a for k, v in darktable_conf(version).items() for a in ("--conf", f"{k}={v}")]
    core = ["--core", *state, "--library", ":memory:", *conf]
    return [darktable_cli(), str(dng), str(out), *export, "--apply-custom-presets", "false", *core]


def render_darktable(source, **raw_kwargs) -> np.ndarray:
    """uint8 sRGB darktable render (H', W', 3) aligned with `canonical_mosaic` of the file's mosaic.

    `source` is a RawFrame or a path read with `read_raw(path, **raw_kwargs)`. darktable renders a
    temporary DNG of the frame's sensor data (see DARKTABLE_SETTINGS), removed afterwards.
    """
    version = darktable_version()  # first, so a missing darktable-cli fails before any work
    frame = source if isinstance(source, RawFrame) else read_raw(source, **raw_kwargs)
    expected = canonical_mosaic(frame.mosaic, frame.cfa).shape
    with tempfile.TemporaryDirectory(prefix="revisp_darktable_") as tmp:
        work = Path(tmp)
        dng, out = _write_frame_dng(frame, work / "frame.dng"), work / "render.png"
        try:
            proc = subprocess.run(
                darktable_command(dng, out, work, version), capture_output=True, text=True, timeout=_DARKTABLE_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise RawReadError(f"{frame.source}: darktable-cli took over {_DARKTABLE_TIMEOUT_S} s; gave up") from None
        log = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        if proc.returncode != 0 or not out.is_file():
            raise RawReadError(f"{frame.source}: darktable-cli failed to render it (exit {proc.returncode}): {log}")
        try:
            rgb = np.round(read_rgb(out) * 255.0).astype(np.uint8)
        except ImageReadError as e:
            raise RawReadError(f"{frame.source}: darktable-cli wrote an unreadable render ({e})") from None
    if rgb.shape[:2] != expected:
        raise RawReadError(
            f"{frame.source}: darktable rendered {rgb.shape[:2]}, the mosaic is {expected}; cannot align"
        )
    return rgb


_RENDERERS = {"libraw": render_libraw, "darktable": render_darktable}
ISPS = tuple(_RENDERERS)


def renderer(isp: str):
    """The render function of an ISP name ("libraw" or "darktable")."""
    if isp not in _RENDERERS:
        raise ValueError(f"isp: expected one of {', '.join(ISPS)}, got {isp!r}")
    return _RENDERERS[isp]


def linearise_srgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] sRGB -> linear RGB (inverse sRGB curve), float64."""
    x = np.asarray(rgb, np.float64) / (255.0 if np.asarray(rgb).dtype == np.uint8 else 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _shift_scores(rgb: np.ndarray, raw_rggb: np.ndarray, max_shift: int, score) -> np.ndarray:
    """score(packed RAW, packed re-mosaiced RGB) with the RGB shifted by (dy, dx) in [-max_shift, max_shift].

    `rgb` (H, W, 3) and `raw_rggb` (H, W) canonical-phase mosaic cover the same pixels;
    entry [dy + max_shift, dx + max_shift] compares raw[y, x] with rgb[y + dy, x + dx].
    """
    m = 2 * ((max_shift + 1) // 2)  # an even margin keeps the RGGB phase
    h, w = raw_rggb.shape
    ref = np.asarray(pack(raw_rggb[m : h - m, m : w - m, np.newaxis]))
    scores = np.zeros((2 * max_shift + 1,) * 2)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            shifted = np.asarray(mosaic(rgb[m + dy : h - m + dy, m + dx : w - m + dx]))
            scores[dy + max_shift, dx + max_shift] = score(ref, shifted)
    return scores


def alignment_scores(rgb: np.ndarray, raw_rggb: np.ndarray, wb, max_shift: int = 2) -> np.ndarray:
    """Correlation of the RAW with the re-mosaiced, linearised RGB shifted by (dy, dx) in [-max_shift, max_shift].

    For renders that are nearly a global function of the RAW (LibRaw); layout as `_shift_scores`.
    """
    lin = linearise_srgb(rgb) / np.asarray(wb, np.float64)
    return _shift_scores(lin, raw_rggb, max_shift, lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _standardised_gradients(packed: np.ndarray) -> np.ndarray:
    """(h, w, 4) -> (n, 8): vertical and horizontal differences of each channel, zero mean and unit variance."""
    g = np.concatenate([np.diff(packed, axis=0)[:, :-1], np.diff(packed, axis=1)[:-1]], axis=-1).reshape(-1, 8)
    g = g - g.mean(axis=0)
    std = g.std(axis=0)
    return g / np.where(std > 0, std, 1.0)


def _gradient_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the 8 gradient maps of two packed images of their correlation coefficient."""
    return float(np.mean(_standardised_gradients(a) * _standardised_gradients(b)))


def gradient_alignment_scores(rgb: np.ndarray, raw_rggb: np.ndarray, max_shift: int = 2) -> np.ndarray:
    """Correlation of the local gradients of the RAW and of the re-mosaiced RGB shifted by (dy, dx).

    For renders that are not a global function of the RAW (darktable: exposure, filmic, highlight
    reconstruction): each packed channel's vertical and horizontal differences are correlated
    separately, so per-channel gains and offsets drop out and a tone curve only reweights edges.
    The RAW is encoded with gamma 1/2.2, close to the render's curve, so dark and bright edges
    weigh alike in both. `rgb` is sRGB (uint8 or [0, 1]); layout as `_shift_scores`.
    """
    x = np.asarray(rgb, np.float64) / (255.0 if np.asarray(rgb).dtype == np.uint8 else 1.0)
    encoded = np.clip(np.asarray(raw_rggb, np.float64), 0.0, None) ** (1 / 2.2)
    return _shift_scores(x, encoded, max_shift, _gradient_correlation)


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
    isp: str


def _prepare(path: Path, raw_kwargs: dict, isp: str) -> _Scene:
    frame = read_raw(path, **raw_kwargs)
    rgb = renderer(isp)(frame)
    stored = canonical_mosaic(to_project_stored(frame), frame.cfa)
    if stored.shape != rgb.shape[:2]:
        raise RawReadError(
            f"{path}: render {rgb.shape[:2]} and mosaic {stored.shape} differ in size; cannot align them"
        )
    packed = np.asarray(pack(stored[..., np.newaxis])).astype(np.uint16)
    return _Scene(frame, rgb, packed, cfa_shift(frame.cfa, CANONICAL_CFA), isp)


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
        "isp": s.isp if _renders_file(s) else f"{s.isp} (temporary DNG of the normalised mosaic)",
        "wb_used": list(wb),
        "wb_source": wb_source,
        "color_matrix_used": _matrix_used(s),
        "canonical_offset": list(s.offset),
        "canonical_shape": list(s.rgb.shape[:2]),
        "patch": patch,
        "stride": stride,
        "grid": [patches[-1]["row"] + 1, patches[-1]["col"] + 1],
        "rgb_format": rgb_format,
        "overexposed": float(oe.mean()),
        "patches": patches,
    }


def _renders_file(s: _Scene) -> bool:
    """True if the ISP rendered the file itself, False if a temporary DNG of its mosaic."""
    return s.isp == "libraw" and s.frame.reader == "libraw"


def _matrix_used(s: _Scene) -> str:
    """Which camera -> sRGB matrix the render applied."""
    if _renders_file(s):
        return "LibRaw's for this file"
    if s.frame.color_matrix is None:
        return "none: camera RGB taken as linear sRGB"
    return f"the frame's ({s.frame.color_matrix_source})"


def _isp_meta(isp: str) -> dict:
    """meta.json entries naming the ISP, its version and settings (LibRaw reads the files either way)."""
    meta = {"isp": isp, "libraw_version": libraw_version(), "rawpy_version": rawpy.__version__}
    if isp == "darktable":
        version = darktable_version()
        return {**meta, "darktable_version": version, "render": {**DARKTABLE_SETTINGS, "conf": darktable_conf(version)}}
    return {**meta, "render": dict(LIBRAW_SETTINGS)}


def _check_same_isp(meta: dict, isp: str, out_dir: Path) -> None:
    """ValueError if `out_dir` already holds scenes another ISP rendered (one meta.json describes one ISP)."""
    old = meta.get("isp", "libraw")
    if meta["scenes"] and old != isp:
        raise ValueError(f"{out_dir}: holds pairs rendered by {old}; write {isp} pairs to another folder")


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
    isp: str = "libraw",
    **raw_kwargs,
) -> dict:
    """Renders RAW files with a real ISP and writes AIM 2022-layout (RGB, RAW) patch pairs plus meta.json.

    Args:
      raw_paths: one path or a list of paths (LibRaw formats, headerless mosaics, PNG mosaics).
      out_dir: output folder (created); an existing meta.json there is extended.
      patch: patch side in RGB pixels (even); the .npy is (patch/2, patch/2, 4).
      stride: grid step in pixels (even), default `patch` (no overlap).
      rgb_format: "jpg" (quality 95) or "png".
      skip_bad: log and skip files that cannot be read or rendered instead of raising.
      progress: show a progress bar.
      isp: "libraw" (rawpy) or "darktable" (darktable-cli, scene-referred filmic; see the module doc).
      **raw_kwargs: `read_raw` arguments applied to every file (shape, dtype, cfa, black, white, wb, ...).

    Returns:
      {"out_dir", "patches" (total written), "scenes": [{"scene", "source", "patches",
      "overexposed", "skipped"}], "failed": [{"source", "error"}]}.
    Raises:
      RawReadError naming the file, for a bad file when `skip_bad` is False.
      FileNotFoundError if `isp="darktable"` and darktable-cli is not installed.
    """
    paths = [Path(raw_paths)] if isinstance(raw_paths, (str, Path)) else [Path(p) for p in raw_paths]
    if not paths:
        raise ValueError("raw_paths: expected at least one RAW file")
    stride = patch if stride is None else stride
    _check_sizes(patch, stride)
    if rgb_format not in RGB_FORMATS:
        raise ValueError(f"rgb_format: expected one of {', '.join(RGB_FORMATS)}, got {rgb_format!r}")
    renderer(isp)  # an unknown name fails before anything is written
    isp_meta = _isp_meta(isp)  # so does a missing darktable-cli
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = _read_meta(out_dir)
    _check_same_isp(meta, isp, out_dir)
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
    for path in tqdm(paths, desc="make-pairs", unit="file", disable=not progress):
        try:
            scene = _prepare(path, raw_kwargs, isp)
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
