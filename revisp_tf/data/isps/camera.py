"""The camera's own RGB (its JPEG of the same shot, or the RAW's embedded preview), aligned onto the RAW's grid.

Not an ISP of ours, but the same interface: `render(frame)` gives the RGB on the canonical mosaic
grid. A camera JPEG is cropped, often scaled, lens-corrected (a radial warp), perhaps slightly
rotated and EXIF-oriented, so it is aligned, never assumed aligned:
1. EXIF orientation: the RGB is turned the way its EXIF tag says, then back by the RAW's own
   orientation (LibRaw's `flip`), so both show the sensor's pixel order;
2. the RAW's luminance (`raw_luminance`): a white-balanced bilinear demosaic, its luminance, the
   mean of each 2x2 tile, gamma 1/2.2; each half-resolution sample then lies at its tile's centre
   whatever the colour (a sum of the tile's R, G, G, B sites leans towards the strongest colour's
   site: 0.27 px of bias on the Canon 550D's bluish frame);
3. `align.coarse_map`: SIFT features + RANSAC on small copies (the RAW's luminance through a
   histogram-matching monotone curve);
4. `align.refine_map`: tile shifts (phase correlation, then Lucas-Kanade), fitting the affine and
   the radial terms BIC picks (of k1 r^2, k2 r^4, k_r r), then a dense fit on small frames;
5. the RGB is resampled (bicubic) at the map of every RAW pixel, and cropped to the largest
   rectangle whose pixels all come from inside the RGB; the RAW is never resampled.
A pair is refused (AlignmentError naming both files) if the features do not agree on one
geometry (another scene), if the RGB covers under MIN_OVERLAP of the RAW, or if the remaining
misalignment exceeds MAX_MEDIAN_PX / MAX_P90_PX.

The gains recorded for such a pair (`camera_capture`) are what the camera itself recorded: the
RAW's as-shot white balance, and the exposure settings of the JPEG's EXIF (its ISP's exposure
gain is not recorded anywhere, so it is left unknown).
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import rawpy
from PIL import Image

from revisp_tf.data.align import warp as align
from revisp_tf.data.isps.common import Render, canonical_mosaic, white_balance
from revisp_tf.data.raw_files import RawFrame, RawReadError, normalise
from revisp_tf.io.images import ImageReadError, read_rgb_samples
from revisp_tf.io.metadata import CaptureMetadata
from revisp_tf.isp.bayer import pack
from revisp_tf.isp.color import YUV_MATRIX
from revisp_tf.isp.process import demosaic_bilinear

EMBEDDED = "embedded"
MIN_OVERLAP = 0.5  # share of the RAW frame the aligned RGB must cover
MAX_MEDIAN_PX = 0.5  # remaining misalignment measured over the tiles (with their noise), full-resolution RAW px
MAX_P90_PX = 1.5
EXIF_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
EXIF_EXPOSURE = {"exposure_time": 0x829A, "f_number": 0x829D, "iso": 0x8827}  # ExposureTime, FNumber, ISOSpeedRatings
# LibRaw's flip -> the EXIF orientation it stands for.
_LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}
CAMERA_SETTINGS = {
    "rgb": "the camera's own RGB, resampled onto the RAW grid (bicubic) by the fitted map; the RAW is exact",
    "orientation": "the RGB's EXIF orientation applied, then the RAW's (LibRaw flip) undone",
    "coarse": "SIFT + RANSAC similarity on ~1024 px copies; RAW = white-balanced bilinear demosaic, luminance, 2x2 mean, gamma 1/2.2, histogram-matched",
    "fine": "half-resolution tiles of 64 px (32 small, 16 tiny frames), the RGB blurred by a 2 px box spread: 3 rounds of phase correlation, 3 of Lucas-Kanade, robust least squares of the affine + the radial terms BIC picks (k1 r^2, k2 r^4, k_r r); under 60 tiles (small frames) a dense fit on local-contrast-normalised images; then measured again",
    "refused": f"overlap < {MIN_OVERLAP:.0%}, median residual > {MAX_MEDIAN_PX} px or 90th percentile > {MAX_P90_PX} px, too few feature matches or tiles",
    "border": "cropped to the largest rectangle whose pixels all map inside the RGB",
}


_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored
    3: lambda a: a[::-1, ::-1],  # 180 degrees
    4: lambda a: a[::-1],  # mirrored vertically
    5: lambda a: np.swapaxes(a, 0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # 90 degrees clockwise
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],  # transversed
    8: lambda a: np.rot90(a, 1),  # 90 degrees counter-clockwise
}
_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def orient(img: np.ndarray, exif: int) -> np.ndarray:
    """Pixels as stored -> as displayed under EXIF orientation `exif` (1-8)."""
    if exif not in _ORIENT:
        raise ValueError(f"EXIF orientation: expected 1 to 8, got {exif}")
    return np.ascontiguousarray(_ORIENT[exif](img))


def unorient(img: np.ndarray, exif: int) -> np.ndarray:
    """Pixels as displayed under EXIF orientation `exif` -> as stored (the inverse of `orient`)."""
    return orient(img, _INVERSE[exif])


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag of an encoded image (1 where it has none or an invalid one)."""
    try:
        value = Image.open(io.BytesIO(data)).getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError):
        return 1
    return value if value in _ORIENT else 1


def exif_exposure(data: bytes) -> dict[str, float | None]:
    """ExposureTime (s), FNumber and ISO of an encoded image's EXIF (None for each it lacks)."""
    try:
        ifd = Image.open(io.BytesIO(data)).getexif().get_ifd(EXIF_IFD)
    except (OSError, ValueError):
        ifd = {}
    out = {}
    for name, tag in EXIF_EXPOSURE.items():
        value = ifd.get(tag)
        value = value[-1] if isinstance(value, tuple) and value else value
        try:
            out[name] = float(value) if value is not None and float(value) > 0 else None
        except (TypeError, ValueError, ZeroDivisionError):
            out[name] = None
    return out


def camera_capture(frame: RawFrame, rgb_data: bytes) -> CaptureMetadata | None:
    """The RAW's as-shot white balance and the JPEG's EXIF exposure settings; None if the RAW records no white balance."""
    if frame.wb is None or frame.wb_source == "unknown":
        return None
    return CaptureMetadata(wb=frame.wb, exposure_gain=None, source=f"camera (RAW as-shot white balance: {frame.wb_source}; JPEG EXIF)", **exif_exposure(rgb_data))


def raw_orientation(frame: RawFrame) -> int:
    """The EXIF orientation the RAW file asks for (LibRaw's flip); 1 for headerless and PNG mosaics."""
    if frame.reader != "libraw":
        return 1
    with rawpy.imread(str(frame.source)) as raw:
        return _LIBRAW_FLIP_TO_EXIF.get(int(raw.sizes.flip), 1)


def embedded_preview(frame: RawFrame) -> bytes:
    """The JPEG preview the RAW file embeds, or RawReadError saying it has none."""
    if frame.reader != "libraw":
        raise RawReadError(f"{frame.source}: a {frame.reader} mosaic has no embedded preview")
    try:
        with rawpy.imread(str(frame.source)) as raw:
            thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError) as e:
        raise RawReadError(f"{frame.source}: no embedded JPEG preview ({type(e).__name__})") from None
    if thumb.format != rawpy.ThumbFormat.JPEG:
        raise RawReadError(f"{frame.source}: its embedded preview is a bitmap, not the camera's JPEG")
    return bytes(thumb.data)


def _decode(data: bytes, name: str) -> np.ndarray:
    """uint8 RGB of encoded JPEG/PNG bytes (as `read_rgb_samples` reads files)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ImageReadError(f"{name}: corrupt image data; expected a JPEG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def half_luminance(rggb: np.ndarray, wb) -> np.ndarray:
    """(H, W) canonical RGGB mosaic -> (H/2, W/2) linear luminance Y of its white-balanced bilinear demosaic, each 2x2 tile's mean.

    The RGB's luminance weights (`rgb_luminance`); the sample of tile (i, j) lies at full-resolution
    (2j + 0.5, 2i + 0.5) whatever the colour.
    """
    rgb = demosaic_bilinear(pack(np.asarray(rggb, np.float32)[..., np.newaxis])).numpy() * np.asarray(wb, np.float32)
    full = rgb @ YUV_MATRIX[0]
    return full.reshape(full.shape[0] // 2, 2, full.shape[1] // 2, 2).mean(axis=(1, 3)).astype(np.float64)


def raw_luminance(frame: RawFrame) -> np.ndarray:
    """The RAW's white-balanced luminance on its half-resolution grid (`half_luminance`), gamma 1/2.2, in [0, 1]."""
    lum = half_luminance(canonical_mosaic(normalise(frame), frame.cfa), white_balance(frame)[0])
    return np.clip(lum / max(np.quantile(lum, 0.999), 1e-6), 0.0, 1.0) ** (1 / 2.2)


def rgb_luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> luminance in [0, 1] (float64)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0


def coverage(m: align.CameraMap, raw_shape, rgb_shape) -> float:
    """Share of the RAW frame (on an 8 px grid) that the map sends inside the RGB."""
    ys, xs = np.mgrid[0 : raw_shape[0] : 8, 0 : raw_shape[1] : 8]
    q = m(np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64))
    return float(np.mean((q >= 0).all(axis=-1) & (q[:, 0] <= rgb_shape[1] - 1) & (q[:, 1] <= rgb_shape[0] - 1)))


def valid_box(valid: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) of a large rectangle of `valid` holding only True, corners even; None if there is none.

    Shrinks the bounding box of `valid` one 2-px step at a time on the side with the most invalid
    pixels on its edge: for the near-convex region a warp leaves, close to the largest rectangle.
    """
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if not len(rows):
        return None
    y0, y1 = rows[0] + rows[0] % 2, (rows[-1] + 1) // 2 * 2
    x0, x1 = cols[0] + cols[0] % 2, (cols[-1] + 1) // 2 * 2
    bad = ~valid
    while y1 - y0 >= 2 and x1 - x0 >= 2:
        edges = {
            "top": bad[y0 : y0 + 2, x0:x1].sum(),
            "bottom": bad[y1 - 2 : y1, x0:x1].sum(),
            "left": bad[y0:y1, x0 : x0 + 2].sum(),
            "right": bad[y0:y1, x1 - 2 : x1].sum(),
        }
        side = max(edges, key=edges.get)
        if edges[side] == 0:
            return int(y0), int(x0), int(y1), int(x1)
        y0, y1, x0, x1 = y0 + 2 * (side == "top"), y1 - 2 * (side == "bottom"), x0 + 2 * (side == "left"), x1 - 2 * (side == "right")
    return None


class CameraRgb:
    """The camera's own RGB of one RAW file: a JPEG/PNG path, or EMBEDDED (the RAW's preview)."""

    name = "camera"
    jpeg_quality = 95

    def __init__(self, rgb):
        self.rgb = rgb if rgb == EMBEDDED else Path(rgb)

    def _load(self, frame: RawFrame) -> tuple[np.ndarray, bytes, str]:
        """(uint8 RGB as stored, the encoded file, a name for messages)."""
        if self.rgb == EMBEDDED:
            data = embedded_preview(frame)
            return _decode(data, f"{frame.source} (embedded preview)"), data, f"{frame.source}'s embedded preview"
        samples = read_rgb_samples(self.rgb)
        if samples.dtype != np.uint8:
            samples = np.round(samples / 257.0).astype(np.uint8)
        return samples, self.rgb.read_bytes(), str(self.rgb)

    def render(self, frame: RawFrame) -> Render:
        stored, data, name = self._load(frame)
        exif = exif_orientation(data)
        flip = raw_orientation(frame)
        rgb = unorient(orient(stored, exif), flip)  # the sensor's pixel order, as the RAW stores it
        raw_half = raw_luminance(frame)
        shape = (2 * raw_half.shape[0], 2 * raw_half.shape[1])
        try:
            coarse, matches = align.coarse_map(raw_half, rgb_luminance(rgb))
            covered = coverage(coarse, shape, rgb.shape[:2])
            if covered < MIN_OVERLAP:
                raise align.AlignmentError(f"the RGB covers {covered:.0%} of the RAW frame (need {MIN_OVERLAP:.0%})")
            fine, residual = align.refine_map(raw_half, rgb_luminance(rgb), coarse)
            ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
            points = np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)
            warped, valid = align.warp_to_raw(rgb, fine, points, shape, cv2.INTER_CUBIC, border=2.0)
            box = valid_box(valid)
            overlap = 0.0 if box is None else (box[2] - box[0]) * (box[3] - box[1]) / (shape[0] * shape[1])
            median, p90 = float(np.median(residual)), float(np.quantile(residual, 0.9))
            if overlap < MIN_OVERLAP:
                raise align.AlignmentError(f"the RGB covers {overlap:.0%} of the RAW frame (need {MIN_OVERLAP:.0%})")
            if median > MAX_MEDIAN_PX or p90 > MAX_P90_PX:
                raise align.AlignmentError(
                    f"misaligned by {median:.2f} px (median) / {p90:.2f} px (90th percentile) after the fit "
                    f"(at most {MAX_MEDIAN_PX} / {MAX_P90_PX})"
                )
        except align.AlignmentError as e:
            raise RawReadError(f"RAW {frame.source} and RGB {name}: cannot align them: {e}") from None
        y0, x0, y1, x1 = box
        alignment = {
            "rgb": name,
            "rgb_shape": list(stored.shape[:2]),
            "rgb_exif_orientation": exif,
            "raw_orientation": flip,
            "map": fine.to_json(),
            "coarse_map": coarse.to_json(),
            **matches,
            "residual_px": {"median": median, "p90": p90, "max": float(residual.max()), "tiles": int(len(residual))},
            "valid_box": [int(y0), int(x0), int(y1), int(x1)],
            "overlap": overlap,
        }
        return Render(warped[y0:y1, x0:x1], (int(y0), int(x0)), alignment, camera_capture(frame, data))

    def settings(self) -> dict:
        return {"render": dict(CAMERA_SETTINGS)}

    def describe(self, frame: RawFrame) -> dict:
        return {"isp": "camera (its own RGB, aligned)", "color_matrix_used": "the camera's own"}
