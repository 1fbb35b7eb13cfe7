"""Real sensor RAW files: read a mosaic with its levels, normalise it into the project's RAW units.

Three kinds of file:
- anything LibRaw reads (DNG and the vendors' formats), through rawpy; `black`/`white` override
  the file's levels (some DNGs carry placeholders);
- headerless mosaics (`.raw`, `.raw16`, ...): `shape`, `dtype`, `cfa`, `black` and `white` are
  all required; a multi-byte dtype without a byte order is read little-endian;
- PNG mosaics (one 8- or 16-bit plane): `cfa`, `black` and `white` are required.

Project RAW units (what `make-pairs` stores in its `.npy`, scored like AIM 2022 Track 1):
    stored = round(1023 * clip((raw - black) / (white - black), 0, 1))    (uint16)
i.e. black -> 0 and white -> 1023 = `PROJECT_10BIT.white_level`; model units are
`PROJECT_10BIT.to_model_units(stored)` = stored / 1024.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import rawpy
from absl import logging

from revisp_tf.isp.bayer import check_pattern
from revisp_tf.isp.sensor import PROJECT_10BIT

HEADERLESS_SUFFIXES = (".raw", ".raw16", ".bin")
# Values above white by more than this share of (white - black) mean the levels are wrong.
WHITE_TOLERANCE = 0.05
# A frame whose brightest value stays under this share of the range probably carries placeholder levels.
PLACEHOLDER_WARNING = 0.02
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class RawReadError(ValueError):
    """A RAW file that cannot be read as a Bayer mosaic with the levels the caller expected."""


@dataclasses.dataclass(frozen=True, eq=False)
class RawFrame:
    """One full-resolution Bayer mosaic as stored by the sensor, with what is known about it.

    Args:
      mosaic: (H, W) uint16 (8-bit data widened) or float32 sensor values, as stored.
      cfa: CFA pattern of `mosaic` ("RGGB", "GRBG", "GBRG", "BGGR").
      black: black level of each 2x2 tile position (0,0), (0,1), (1,0), (1,1).
      white: saturation level.
      wb: camera white-balance gains (R, G, B) with G = 1, or None if unknown.
      color_matrix: 3x3 camera RGB -> linear sRGB matrix, or None if unknown.
      source: the file it came from.
      reader: "libraw", "headerless" or "png".
      wb_source, color_matrix_source: "file", "argument" or "unknown".
    """

    mosaic: np.ndarray
    cfa: str
    black: tuple[float, float, float, float]
    white: float
    wb: tuple[float, float, float] | None
    color_matrix: np.ndarray | None
    source: Path
    reader: str
    wb_source: str = "unknown"
    color_matrix_source: str = "unknown"

    def sensor_info(self) -> dict:
        """JSON-friendly description of the levels, pattern and colour data."""
        return {
            "reader": self.reader,
            "shape": list(self.mosaic.shape),
            "mosaic_dtype": self.mosaic.dtype.name,
            "cfa": self.cfa,
            "black": list(self.black),
            "white": self.white,
            "wb": None if self.wb is None else list(self.wb),
            "wb_source": self.wb_source,
            "color_matrix": None if self.color_matrix is None else self.color_matrix.tolist(),
            "color_matrix_source": self.color_matrix_source,
        }


def _tile_levels(black, source) -> tuple[float, float, float, float]:
    """A scalar or four per-tile-position black levels -> a 4-tuple of floats."""
    b = np.broadcast_to(np.asarray(black, np.float64), (4,)) if np.ndim(black) == 0 else np.asarray(black, np.float64)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise RawReadError(
            f"{source}: black level must be a number or 4 numbers (one per 2x2 tile position), got {black!r}"
        )
    return tuple(float(v) for v in b)


def _wb_gains(camera_wb, desc: str) -> tuple[float, float, float] | None:
    """LibRaw's per-colour multipliers -> (R, G, B) gains with G = 1, or None when absent."""
    r, g, b = (float(camera_wb[desc.index(c)]) for c in "RGB")
    if min(r, g, b) <= 0 or not np.all(np.isfinite([r, g, b])):
        return None
    return (r / g, 1.0, b / g)


def _read_libraw(path: Path, black, white, cfa) -> RawFrame:
    """A LibRaw-readable file's visible mosaic, pattern, levels and colour data."""
    try:
        with rawpy.imread(str(path)) as raw:
            pattern = raw.raw_pattern
            if pattern is None or pattern.shape != (2, 2) or raw.num_colors != 3:
                raise RawReadError(f"{path}: not a Bayer mosaic (LibRaw pattern {pattern}); expected a 2x2 RGB CFA")
            desc = raw.color_desc.decode()
            # The visible area's own top-left tile, so crops by the visible margins are accounted for.
            file_cfa = "".join(desc[c] for c in raw.raw_colors_visible[:2, :2].ravel())
            mosaic = np.array(raw.raw_image_visible, copy=True)
            levels = [float(raw.black_level_per_channel[c]) for c in raw.raw_colors_visible[:2, :2].ravel()]
            file_white = float(raw.white_level)
            wb = _wb_gains(raw.camera_whitebalance, desc)
            cm = np.asarray(raw.color_matrix, np.float64)[:, :3]
    except rawpy.LibRawError as e:
        raise RawReadError(
            f"{path}: LibRaw cannot read it ({type(e).__name__}: {e}); expected a camera RAW or DNG file"
        ) from None
    except OSError as e:
        raise RawReadError(f"{path}: cannot read ({e.strerror or e}); expected a camera RAW or DNG file") from None
    try:
        file_cfa = check_pattern(file_cfa)
    except ValueError:
        raise RawReadError(
            f"{path}: CFA {file_cfa!r} is not a Bayer pattern; expected RGGB, GRBG, GBRG or BGGR"
        ) from None
    if cfa is not None and check_pattern(cfa) != file_cfa:
        raise RawReadError(f"{path}: the file's CFA is {file_cfa}, but {cfa} was given")
    return RawFrame(
        mosaic=mosaic,
        cfa=file_cfa,
        black=_tile_levels(levels if black is None else black, path),
        white=file_white if white is None else float(white),
        wb=wb,
        color_matrix=cm if np.any(cm) else None,
        source=path,
        reader="libraw",
        wb_source="file" if wb is not None else "unknown",
        color_matrix_source="file" if np.any(cm) else "unknown",
    )


def _require(path: Path, kind: str, **given) -> None:
    """RawReadError naming every missing argument a file of this kind needs."""
    missing = [k for k, v in given.items() if v is None]
    if missing:
        flags = ", ".join(f"--{k}" for k in missing)
        raise RawReadError(f"{path}: a {kind} has no header; pass {flags} ({', '.join(missing)} are required)")


def _read_headerless(path: Path, shape, dtype) -> np.ndarray:
    """A headerless mosaic of the given shape and dtype, checking the file size."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise RawReadError(f"{path}: unknown dtype {dtype!r}; expected e.g. uint16, uint8, float32") from None
    if not ((dt.kind == "u" and dt.itemsize <= 2) or dt.kind == "f"):
        raise RawReadError(
            f"{path}: dtype {dt.name} is not a sample type of a mosaic; expected uint8, uint16 or a float type"
        )
    dt = dt.newbyteorder("<") if dt.byteorder == "=" else dt
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise RawReadError(f"{path}: shape must be two sizes (H, W), got {shape!r}") from None
    if h <= 0 or w <= 0:
        raise RawReadError(f"{path}: shape must be two positive sizes (H, W), got {tuple(shape)}")
    expected = h * w * dt.itemsize
    try:
        size = path.stat().st_size
    except OSError as e:
        raise RawReadError(
            f"{path}: cannot read ({e.strerror or e}); expected a headerless {h}x{w} {dt} mosaic"
        ) from None
    if size != expected:
        raise RawReadError(f"{path}: file has {size} bytes; a {h}x{w} {dt.name} mosaic has {expected}")
    return np.fromfile(path, dt).reshape(h, w)


def _read_png(path: Path) -> np.ndarray:
    """A single-plane 8- or 16-bit PNG mosaic."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise RawReadError(f"{path}: OpenCV cannot decode it; expected a single-plane 8- or 16-bit PNG mosaic")
    if img.ndim != 2 or img.dtype not in (np.uint8, np.uint16):
        raise RawReadError(
            f"{path}: PNG has shape {img.shape} dtype {img.dtype}; expected one 8- or 16-bit plane (a mosaic)"
        )
    return img


def _is_png(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(8) == _PNG_MAGIC
    except OSError:
        return False


def _check_values(frame: RawFrame, tolerance: float) -> None:
    """RawReadError for non-finite values or values above white beyond `tolerance` of the range."""
    m = frame.mosaic
    if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
        n = int(np.sum(~np.isfinite(m)))
        raise RawReadError(f"{frame.source}: {n} non-finite (NaN/inf) sensor values; expected finite values")
    black = max(frame.black)
    if not frame.white > black:
        raise RawReadError(f"{frame.source}: white level {frame.white} must be above the black level {black}")
    limit = frame.white + tolerance * (frame.white - black)
    peak = float(m.max())
    if peak > limit:
        raise RawReadError(
            f"{frame.source}: sensor values reach {peak:g}, above white level {frame.white:g} "
            f"(tolerance {tolerance:.0%} of the range); expected values <= {limit:g}: wrong --white or --dtype?"
        )
    if peak - black < PLACEHOLDER_WARNING * (frame.white - black):
        logging.warning(
            "%s: brightest value %g is under %.0f%% of the range %g..%g: placeholder levels? pass --black/--white",
            frame.source,
            peak,
            100 * PLACEHOLDER_WARNING,
            black,
            frame.white,
        )


def read_raw(
    path,
    *,
    shape=None,
    dtype=None,
    cfa=None,
    black=None,
    white=None,
    wb=None,
    color_matrix=None,
    white_tolerance: float = WHITE_TOLERANCE,
) -> RawFrame:
    """Reads a RAW file (LibRaw format, headerless mosaic or PNG mosaic) into a validated RawFrame.

    `shape` (H, W) marks a headerless file (also recognised by its suffix). `wb` (R, G, B gains)
    and `color_matrix` (3x3 camera -> linear sRGB) supply colour data a file lacks or override it.
    Raises RawReadError naming the file and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise RawReadError(f"{path}: no such file; expected a RAW file")
    if shape is not None or path.suffix.lower() in HEADERLESS_SUFFIXES:
        _require(path, "headerless raw file", shape=shape, dtype=dtype, cfa=cfa, black=black, white=white)
        frame = _frame(path, _read_headerless(path, shape, dtype), cfa, black, white, "headerless")
    elif _is_png(path):
        _require(path, "PNG mosaic", cfa=cfa, black=black, white=white)
        frame = _frame(path, _read_png(path), cfa, black, white, "png")
    else:
        frame = _read_libraw(path, black, white, cfa)
    if wb is not None:
        frame = dataclasses.replace(frame, wb=_checked_wb(path, wb), wb_source="argument")
    if color_matrix is not None:
        frame = dataclasses.replace(
            frame, color_matrix=_checked_matrix(path, color_matrix), color_matrix_source="argument"
        )
    _check_values(frame, white_tolerance)
    return frame


def _frame(path: Path, mosaic: np.ndarray, cfa, black, white, reader: str) -> RawFrame:
    """RawFrame of a mosaic whose levels and pattern the caller gave."""
    try:
        cfa = check_pattern(cfa)
    except ValueError as e:
        raise RawReadError(f"{path}: {e}") from None
    mosaic = mosaic.astype(np.float32 if mosaic.dtype.kind == "f" else np.uint16)
    return RawFrame(mosaic, cfa, _tile_levels(black, path), float(white), None, None, path, reader)


def _checked_wb(path: Path, wb) -> tuple[float, float, float]:
    g = np.asarray(wb, np.float64)
    if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise RawReadError(f"{path}: white balance must be 3 positive (R, G, B) gains, got {wb!r}")
    return tuple(float(v) for v in g / g[1])


def _checked_matrix(path: Path, m) -> np.ndarray:
    m = np.asarray(m, np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise RawReadError(f"{path}: colour matrix must be a finite 3x3 camera -> sRGB matrix, got shape {m.shape}")
    return m


def _black_plane(frame: RawFrame) -> np.ndarray:
    """Full-resolution black level: the 2x2 tile of levels repeated over the mosaic."""
    h, w = frame.mosaic.shape
    tile = np.reshape(frame.black, (2, 2))
    return np.tile(tile, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


def _normalised64(frame: RawFrame) -> np.ndarray:
    """clip((raw - black) / (white - black), 0, 1) in float64."""
    black = _black_plane(frame)
    return np.clip((frame.mosaic.astype(np.float64) - black) / (frame.white - black), 0.0, 1.0)


def normalise(frame: RawFrame) -> np.ndarray:
    """(H, W) float32 mosaic in [0, 1]: 0 at black, 1 at white, clipped."""
    return _normalised64(frame).astype(np.float32)


def to_project_stored(frame: RawFrame) -> np.ndarray:
    """(H, W) uint16 in PROJECT_10BIT stored units: round(1023 * normalised), black -> 0, white -> 1023."""
    span = PROJECT_10BIT.white_level - PROJECT_10BIT.black_level
    return np.round(PROJECT_10BIT.black_level + span * _normalised64(frame)).astype(np.uint16)
