"""DNG writer: a packed RGGB prediction as a RAW file that LibRaw, darktable and RawTherapee render.

The file is a single-IFD, uncompressed uint16 CFA TIFF (photometric 32803) with the DNG tags
those decoders need: DNGVersion 1.4, the CFA pattern, black and white levels, the colour tags,
plus Make/Model so rawspeed can name the camera. The colour tags say how to turn the camera RGB
into colours; an editor opening the file applies them at its defaults:

- AsShotNeutral (50728): the camera RGB of a white object, (R, G, B) with G = 1. The editor's
  "as shot" / "camera" white balance divides by it (LibRaw `use_camera_wb`, darktable's white
  balance module, RawTherapee's "Camera" white balance).
- ColorMatrix1 (50721): XYZ -> camera RGB under CalibrationIlluminant1 (50778) = 21, D65. The
  editor inverts it (normalised so that white-balanced white stays white) for its camera ->
  working space conversion ("standard matrix" / "camera standard" input profile).

`write_dng(..., rgb=image)` fits both to the image the RAW was reconstructed from
(`revisp_tf.isp.color_fit`): the written RAW then renders with the input's colours, whatever
camera space the model's RAW is in. Without it, the caller gives them (a real camera's) or
they default to XYZ -> linear sRGB and (1, 1, 1): right only for RAW whose "camera" space is
white-balanced linear sRGB. LibRaw refuses mosaics under 22 pixels a side.

`write_dng_bands` writes the same file from row bands as they are produced (`revisp-tf infer`
on a large frame): the TIFF is created at its full size, each band's mosaic rows go into it as
they come, and the fitted colour is written into its tags at the end; nothing frame-sized is
held but the input image the colour is fitted to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from absl import logging

from revisp_tf.io.atomic import atomic_write
from revisp_tf.isp._checks import as_float_tensor, check_channels, restore_rank
from revisp_tf.isp.bayer import (
    CANONICAL_CFA,
    check_pattern,
    crop_to_pattern,
    pattern_colors,
    unpack,
)
from revisp_tf.isp.color_fit import (
    XYZ_TO_SRGB,
    CameraColour,
    dng_colour,
    fit_camera_colour,
    thinning_stride,
)
from revisp_tf.isp.sensor import SensorSpec

_D65 = 21  # EXIF LightSource code of CalibrationIlluminant1.
_ROWS_PER_WRITE = 16  # packed rows converted and written at a time by write_dng_bands
_MATRIX_DENOMINATOR = 10_000
_NEUTRAL_DENOMINATOR = 1_000_000
# TIFF field types.
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _SRATIONAL = 1, 2, 3, 4, 5, 10


def _integral_level(value: float, name: str) -> int:
    """A black or white level as an int, or ValueError if it has a fraction (DNG stores them as integers here)."""
    if not float(value).is_integer() or not 0 <= value <= np.iinfo(np.uint16).max:
        raise ValueError(f"{name}: expected a whole number in [0, 65535], got {value}")
    return int(value)


def _stored_mosaic(units: np.ndarray, sensor) -> tuple[np.ndarray, int, int]:
    """Model units -> (stored uint16 values, black level, white level).

    A SensorSpec maps units with its own `to_stored`; a (black, white) pair means units are
    0 at black and 1 at white.
    """
    if isinstance(sensor, SensorSpec):
        black, white = sensor.black_level, sensor.white_level
        stored = np.minimum(sensor.to_stored(units), np.uint16(white))  # a DNG never exceeds its WhiteLevel
    else:
        try:
            black, white = (float(v) for v in sensor)
        except (TypeError, ValueError):
            raise ValueError(f"sensor: expected a SensorSpec or a (black, white) pair, got {sensor!r}") from None
        if not 0 <= black < white:
            raise ValueError(f"sensor levels: need 0 <= black < white, got ({black}, {white})")
        v = np.round(black + np.asarray(units, np.float64) * (white - black))
        stored = np.clip(v, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return stored, _integral_level(black, "black level"), _integral_level(white, "white level")


def _as_shot_neutral(wb_gains) -> list[int]:
    """White-balance gains (R, G, B) -> AsShotNeutral rationals: 1/gain normalised to green."""
    gains = np.asarray([1.0, 1.0, 1.0] if wb_gains is None else wb_gains, np.float64)
    if gains.shape != (3,) or not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise ValueError(f"wb_gains: expected 3 positive (R, G, B) gains, got {wb_gains!r}")
    neutral = gains[1] / gains
    return [v for n in neutral for v in (round(n * _NEUTRAL_DENOMINATOR), _NEUTRAL_DENOMINATOR)]


def _color_matrix(color_matrix) -> list[int]:
    """3x3 XYZ -> camera matrix -> ColorMatrix1 signed rationals, row-major."""
    m = np.asarray(XYZ_TO_SRGB if color_matrix is None else color_matrix, np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError(f"color_matrix: expected a finite 3x3 XYZ -> camera matrix, got shape {m.shape}")
    if np.abs(m).max() * _MATRIX_DENOMINATOR >= 2**31:
        raise ValueError(f"color_matrix: entries must stay under {2**31 // _MATRIX_DENOMINATOR} in magnitude, got {np.abs(m).max():g}")
    return [v for x in m.ravel() for v in (round(x * _MATRIX_DENOMINATOR), _MATRIX_DENOMINATOR)]


class _FitSamples:
    """The tiles of a packed frame that its colour fit reads (every `thinning_stride`-th row and column), gathered as rows pass."""

    def __init__(self, shape: tuple[int, int, int], sensor, rgb):
        h, w = shape[:2]
        self.stride = thinning_stride(h, w)
        self.sensor, self.rgb, self.h, self.w = sensor, rgb, h, w
        self.rows = []

    def add(self, y0: int, units: np.ndarray) -> None:
        first = -y0 % self.stride  # the first row of this block on the thinned grid
        self.rows.append(np.asarray(units[first :: self.stride, :: self.stride], np.float32))

    def fit(self) -> CameraColour:
        """The colour fit on the gathered tiles, on the values the DNG stores (0 at black, 1 at white)."""
        stored, black, white = _stored_mosaic(np.concatenate(self.rows), self.sensor)
        camera = np.clip((stored.astype(np.float64) - black) / (white - black), 0.0, 1.0)
        s, rgb = self.stride, np.asarray(self.rgb)
        if rgb.shape[:2] != (2 * self.h, 2 * self.w):
            raise ValueError(f"rgb: expected shape {(2 * self.h, 2 * self.w, 3)} for a packed bayer of "
                             f"shape {(self.h, self.w, 4)}, got {rgb.shape}")
        tiles = rgb.reshape(self.h, 2, self.w, 2, -1)[::s, :, ::s]
        return fit_camera_colour(camera, tiles.reshape(2 * tiles.shape[0], 2 * tiles.shape[2], -1))


def fitted_colour(packed_rggb_units, sensor, rgb) -> CameraColour:
    """The colour fit of a packed RGGB reconstruction, on the values the DNG stores (0 at black, 1 at white).

    It reads every `thinning_stride`-th tile row and column, as `color_fit` thins a large image, and
    converts only those (a 100 MP frame costs a few MB). Given the thinned tiles, the fit counts
    its usable share among them, not among the whole frame's tiles.
    """
    units = np.asarray(packed_rggb_units)
    samples = _FitSamples(units.shape, sensor, rgb)
    samples.add(0, units)
    return samples.fit()


def _tag_colour(colour: CameraColour, wb_gains=None) -> tuple[np.ndarray, np.ndarray]:
    """(wb_gains, color_matrix) arguments that write a fitted camera colour as AsShotNeutral and ColorMatrix1.

    With `wb_gains` (the camera's recorded white balance), the fitted gains give way to it: the
    camera -> sRGB transform is ccm @ diag(wb_gains), so AsShotNeutral is exactly 1 / wb_gains
    (the ccm's rows sum to 1) and ColorMatrix1 keeps the fitted ccm.
    """
    if wb_gains is not None:
        colour = CameraColour(colour.ccm, np.asarray(wb_gains, np.float64), colour.tiles)
    tags = dng_colour(colour.camera_to_srgb)
    return tags.wb_gains, tags.color_matrix


def dng_tags(cfa: str, black: int, white: int, wb_gains, color_matrix, camera_model: str) -> list[tuple]:
    """tifffile `extratags` of a CFA DNG."""
    return [
        (271, _ASCII, 0, camera_model, True),  # Make: rawspeed warns and skips its camera lookup without it
        (272, _ASCII, 0, camera_model, True),  # Model
        (50706, _BYTE, 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, _BYTE, 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, _ASCII, 0, camera_model, True),  # UniqueCameraModel
        (33421, _SHORT, 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, _BYTE, 4, pattern_colors(cfa), True),  # CFAPattern, row-major 0=R 1=G 2=B
        (50710, _BYTE, 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, _SHORT, 1, 1, True),  # CFALayout: rectangular
        (50714, _LONG, 1, black, True),  # BlackLevel
        (50717, _LONG, 1, white, True),  # WhiteLevel
        (50721, _SRATIONAL, 9, _color_matrix(color_matrix), True),  # ColorMatrix1
        (50728, _RATIONAL, 3, _as_shot_neutral(wb_gains), True),  # AsShotNeutral
        (50778, _SHORT, 1, _D65, True),  # CalibrationIlluminant1
    ]


def write_dng(
    path,
    packed_rggb_units,
    sensor: SensorSpec | tuple[float, float],
    *,
    cfa: str = CANONICAL_CFA,
    wb_gains=None,
    color_matrix=None,
    rgb=None,
    camera_model: str = "revisp-tf",
) -> Path:
    """Writes a packed RGGB (h, w, 4) array in model units as a uint16 CFA DNG.

    Args:
      path: output file (written to a temporary name, then renamed).
      packed_rggb_units: (h, w, 4) float in [0, 1], packed RGGB as everywhere in revisp_tf.
      sensor: a SensorSpec (stored = `sensor.to_stored(units)`, levels from the spec), or a
        (black, white) pair (stored = black + units * (white - black)).
      cfa: CFA pattern of the written mosaic. Other than RGGB, the mosaic is cropped by one
        pixel at each end of every shifted axis (`bayer.crop_to_pattern`), never re-coloured.
      wb_gains: (R, G, B) white-balance gains, written as AsShotNeutral = 1 / gains (normalised
        to green); default (1, 1, 1).
      color_matrix: 3x3 XYZ -> camera matrix (ColorMatrix1, D65); default XYZ -> linear sRGB.
      rgb: the (2h, 2w, 3) sRGB image in [0, 1] the RAW was reconstructed from. Given, AsShotNeutral
        and ColorMatrix1 are fitted so that the RAW renders with this image's colours
        (`color_fit.fit_camera_colour` on the stored values); not together with color_matrix.
        With wb_gains too (a white balance the camera recorded), AsShotNeutral is 1 / wb_gains
        and ColorMatrix1 the fitted matrix under it.
      camera_model: UniqueCameraModel string.
    """
    path = Path(path)
    cfa = check_pattern(cfa)
    x, rank = as_float_tensor(packed_rggb_units, "packed_rggb_units")
    check_channels(x, 4, "packed_rggb_units")
    if rank != 3:
        raise ValueError(f"packed_rggb_units: expected one image (h, w, 4), got shape {tuple(x.shape)}")
    mosaic = crop_to_pattern(unpack(restore_rank(x, rank)), CANONICAL_CFA, cfa).numpy()[..., 0]
    stored, black, white = _stored_mosaic(mosaic, sensor)
    if rgb is not None:
        if color_matrix is not None:
            raise ValueError("rgb: the colour is fitted to it; give either rgb or color_matrix, not both")
        colour = fitted_colour(np.asarray(restore_rank(x, rank)), sensor, rgb)
        if colour.tiles == 0:
            logging.warning("%s: too few mid-tone pixels for a colour fit; the prior camera's matrix is written", path)
        wb_gains, color_matrix = _tag_colour(colour, wb_gains)
    tags = dng_tags(cfa, black, white, wb_gains, color_matrix, camera_model)
    with atomic_write(path) as tmp:
        tifffile.imwrite(tmp, stored, photometric=32803, metadata=None, extratags=tags)
    return path


def write_dng_bands(
    path,
    shape: tuple[int, int, int],
    bands,
    sensor: SensorSpec | tuple[float, float],
    *,
    wb_gains=None,
    color_matrix=None,
    rgb=None,
    camera_model: str = "revisp-tf",
) -> Path:
    """`write_dng` (canonical RGGB) of a packed (h, w, 4) frame given as (first row, rows) bands, top to bottom.

    The file is created at its full size, each band's mosaic rows are written into it as the band
    comes, and with `rgb` the colour fitted to the rows (`fitted_colour`, its tiles gathered as
    they pass) goes into ColorMatrix1 and AsShotNeutral (1 / `wb_gains` when given) at the end, in place; then the file is
    renamed to `path`. Equal to `write_dng(path, frame, sensor, ...)` of the whole frame.
    """
    path = Path(path)
    h, w, c = shape
    if c != 4 or h < 1 or w < 1:
        raise ValueError(f"{path}: expected a packed bayer shape (h, w, 4), got {shape}")
    if rgb is not None and color_matrix is not None:
        raise ValueError("rgb: the colour is fitted to it; give either rgb or color_matrix, not both")
    _, black, white = _stored_mosaic(np.zeros((1, 1, 4), np.float32), sensor)
    samples = _FitSamples(shape, sensor, rgb) if rgb is not None else None
    tags = dng_tags(CANONICAL_CFA, black, white, wb_gains, color_matrix, camera_model)
    with atomic_write(path) as tmp:
        tifffile.imwrite(tmp, shape=(2 * h, 2 * w), dtype=np.uint16, photometric=32803, metadata=None, extratags=tags)
        with tifffile.TiffFile(tmp) as tif:
            page = tif.pages[0]
            if not page.is_contiguous:
                raise RuntimeError(f"{path}: tifffile did not lay the mosaic out in one piece")
            offset = page.dataoffsets[0]
        written = 0
        with open(tmp, "r+b") as f:
            f.seek(offset)
            for y0, rows in bands:
                if y0 != written:
                    raise RuntimeError(f"{path}: rows {y0}.. arrived after {written} rows; expected them in order")
                for k in range(0, len(rows), _ROWS_PER_WRITE):  # small conversion temporaries, whatever the width
                    x, _ = as_float_tensor(rows[k : k + _ROWS_PER_WRITE], "packed_rggb_units")  # as write_dng checks
                    if tuple(x.shape[2:]) != (w, 4):
                        raise ValueError(f"{path}: rows of shape {tuple(x.shape[2:])}; expected {(w, 4)}")
                    stored, _, _ = _stored_mosaic(unpack(x[0]).numpy()[..., 0], sensor)
                    f.write(stored.astype("<u2").tobytes())
                    if samples is not None:
                        samples.add(y0 + k, x[0].numpy())
                written += len(rows)
        if written != h:
            raise RuntimeError(f"{path}: {written} of {h} rows were produced")
        if samples is not None:
            colour = samples.fit()
            if colour.tiles == 0:
                logging.warning("%s: too few mid-tone pixels for a colour fit; the prior camera's matrix is written", path)
            gains, matrix = _tag_colour(colour, wb_gains)
            with tifffile.TiffFile(tmp, mode="r+") as tif:
                tif.pages[0].tags[50721].overwrite(_color_matrix(matrix))  # same size: rewritten in place
                tif.pages[0].tags[50728].overwrite(_as_shot_neutral(gains))
    return path

