"""What the real ISPs share: the render record, the canonical crop, the white balance, the temporary DNG."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np

from revisp_tf.data.raw_files import RawFrame, RawReadError, normalise
from revisp_tf.io.dng import write_dng
from revisp_tf.io.images import ImageReadError, read_rgb
from revisp_tf.io.metadata import CaptureMetadata
from revisp_tf.isp.bayer import CANONICAL_CFA, crop_to_pattern, pack
from revisp_tf.isp.color_fit import DngColour, dng_colour
from revisp_tf.isp.process import gray_world_gains

# A temporary DNG stores the normalised mosaic at 16 bits: black 0, white 65535.
DNG_LEVELS = (0, 65535)


@dataclasses.dataclass(frozen=True, eq=False)
class Render:
    """An ISP's uint8 sRGB render and where it lies on the frame's canonical (RGGB) mosaic.

    Args:
      rgb: (h, w, 3) uint8, h and w even; rgb[i, j] shows canonical mosaic pixel (i + oy, j + ox).
      origin: (oy, ox), both even (the RGGB phase is kept); (0, 0) for renders of the whole mosaic.
      alignment: how the origin was found and how clearly (meta.json), or None if by construction.
      capture: the gains the render applied (white balance, exposure), as a camera's maker notes record them.
    """

    rgb: np.ndarray
    origin: tuple[int, int] = (0, 0)
    alignment: dict | None = None
    capture: CaptureMetadata | None = None


def canonical_mosaic(full: np.ndarray, cfa: str) -> np.ndarray:
    """Crops a full-resolution (H, W[, C]) array of a `cfa` mosaic to the canonical RGGB phase."""
    x = full[..., np.newaxis] if full.ndim == 2 else full
    out = crop_to_pattern(x, cfa, CANONICAL_CFA).numpy()
    return out[..., 0] if full.ndim == 2 else out


def white_balance(frame: RawFrame) -> tuple[tuple[float, float, float], str]:
    """(R, G, B) gains the render uses and where they come from: the frame's source, or gray world."""
    if frame.wb is not None:
        return frame.wb, frame.wb_source
    packed = pack(canonical_mosaic(normalise(frame), frame.cfa)[..., np.newaxis])
    gains = gray_world_gains(packed[np.newaxis])[0].numpy()
    return tuple(float(g) for g in gains), "gray_world"


def frame_dng_colour(frame: RawFrame, wb) -> DngColour:
    """The DNG colour of a frame rendered with white balance `wb`: its camera -> sRGB matrix (linear sRGB where it has
    none) acts on white-balanced camera RGB, so the native camera -> sRGB map is that matrix times diag(wb)."""
    cam_to_srgb = np.eye(3) if frame.color_matrix is None else np.asarray(frame.color_matrix, np.float64)
    return dng_colour(cam_to_srgb @ np.diag(np.asarray(wb, np.float64)))


def write_frame_dng(frame: RawFrame, path: Path) -> Path:
    """Uncompressed DNG of the canonical crop of the normalised mosaic, with the render's WB and colour matrix."""
    packed = pack(canonical_mosaic(normalise(frame), frame.cfa)[..., np.newaxis])
    wb, _ = white_balance(frame)
    return write_dng(path, packed, DNG_LEVELS, wb_gains=wb, color_matrix=frame_dng_colour(frame, wb).color_matrix)


def describe(isp_name: str, frame: RawFrame, renders_file: bool) -> dict:
    """meta.json's "isp" and "color_matrix_used" of a scene: what was rendered, with which camera -> sRGB matrix."""
    if renders_file:
        return {"isp": isp_name, "color_matrix_used": "LibRaw's for this file"}
    if frame.color_matrix is None:
        matrix = "none: camera RGB taken as linear sRGB"
    else:
        matrix = f"the frame's ({frame.color_matrix_source})"
    return {"isp": f"{isp_name} (temporary DNG of the normalised mosaic)", "color_matrix_used": matrix}


def run_tool(frame: RawFrame, tool: str, cmd: list[str], timeout_s: float, env=None) -> None:
    """Runs an ISP's command line tool on `frame`; RawReadError naming the file (and the tool's last lines) if it fails."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise RawReadError(f"{frame.source}: {tool} took over {timeout_s:g} s; gave up") from None
    if proc.returncode != 0:
        log = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise RawReadError(f"{frame.source}: {tool} failed to render it (exit {proc.returncode}): {log}")


def read_render(frame: RawFrame, tool: str, path: Path) -> np.ndarray:
    """uint8 RGB of the 8-bit render a tool wrote, or RawReadError naming the file."""
    if not path.is_file():
        raise RawReadError(f"{frame.source}: {tool} exited without writing a render")
    try:
        return np.round(read_rgb(path) * 255.0).astype(np.uint8)
    except ImageReadError as e:
        raise RawReadError(f"{frame.source}: {tool} wrote an unreadable render ({e})") from None
