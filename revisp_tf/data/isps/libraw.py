"""LibRaw (through rawpy): a plain render that keeps what the method needs.

Camera white balance, sRGB primaries and curve, 8 bits, highlights clipped (overexposed pixels
are the point of the method), no auto-brightening and no data-driven white point (LibRaw's
`adjust_maximum_thr`), so its white is the sensor white the RAW is normalised with. Its output
has the size of the visible mosaic and is pixel-aligned with it. Files LibRaw cannot open
(headerless, PNG mosaics) are rendered by the same settings from a temporary uncompressed DNG
holding their normalised mosaic.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import rawpy

from revisp_tf.data.isps.common import Render, canonical_mosaic, describe, white_balance, write_frame_dng
from revisp_tf.data.raw_files import RawFrame, RawReadError, read_raw
from revisp_tf.io.metadata import CaptureMetadata

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


def libraw_version() -> str:
    """Version of the LibRaw inside rawpy, e.g. '0.22.2'."""
    return ".".join(str(v) for v in rawpy.libraw_version)


def _libraw_params(wb, **levels) -> rawpy.Params:
    """rawpy.Params of LIBRAW_SETTINGS with (R, G, B) white-balance gains, plus level overrides."""
    s = {k: v for k, v in LIBRAW_SETTINGS.items() if k != "white_balance"}
    s["output_color"] = rawpy.ColorSpace.sRGB
    s["highlight_mode"] = rawpy.HighlightMode.Clip
    s["demosaic_algorithm"] = rawpy.DemosaicAlgorithm.AHD
    return rawpy.Params(**s, user_wb=[wb[0], wb[1], wb[2], wb[1]], **levels)


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


def _render_file(frame: RawFrame):
    """LibRaw render of the file itself, full visible size."""
    with rawpy.imread(str(frame.source)) as raw:
        return raw.postprocess(_libraw_params(white_balance(frame)[0], **_level_overrides(frame, raw)))


def _render_via_dng(frame: RawFrame):
    """LibRaw render of a temporary DNG holding the canonical crop of the normalised mosaic."""
    with tempfile.TemporaryDirectory(prefix="revisp_make_pairs_") as tmp:
        dng = write_frame_dng(frame, Path(tmp) / "frame.dng")
        with rawpy.imread(str(dng)) as raw:
            return raw.postprocess(_libraw_params(white_balance(frame)[0]))


def renders_file(frame: RawFrame) -> bool:
    """True if LibRaw renders the file itself, False if a temporary DNG of its mosaic."""
    return frame.reader == "libraw"


def render_libraw(source, **raw_kwargs):
    """uint8 sRGB render (H', W', 3) aligned with `canonical_mosaic` of the file's mosaic.

    `source` is a RawFrame or a path read with `read_raw(path, **raw_kwargs)`.
    """
    frame = source if isinstance(source, RawFrame) else read_raw(source, **raw_kwargs)
    try:
        if renders_file(frame):
            rgb = _render_file(frame)
            if rgb.shape[:2] != frame.mosaic.shape:
                raise RawReadError(
                    f"{frame.source}: LibRaw rendered {rgb.shape[:2]}, the mosaic is {frame.mosaic.shape}; cannot align"
                )
            return canonical_mosaic(rgb, frame.cfa)
        return _render_via_dng(frame)
    except rawpy.LibRawError as e:
        raise RawReadError(f"{frame.source}: LibRaw failed to render it ({type(e).__name__}: {e})") from None


def libraw_capture(frame: RawFrame) -> CaptureMetadata:
    """The gains LibRaw applies with LIBRAW_SETTINGS: the white balance, and 1 / its smallest multiplier.

    With highlights clipped LibRaw scales the multipliers so that the smallest is 1 (dcraw's
    `scale_colors`): white balance (R, 1, B) with R or B under 1 also brightens by 1 / min. Its
    auto-brightening is off, so that is its whole exposure gain.
    """
    wb, source = white_balance(frame)
    return CaptureMetadata(wb=wb, exposure_gain=1.0 / min(wb[0] / wb[1], 1.0, wb[2] / wb[1]), source=f"libraw ({source} white balance)")


class LibRaw:
    """The LibRaw ISP (see the module doc)."""

    name = "libraw"
    jpeg_quality = 95

    def render(self, frame: RawFrame) -> Render:
        return Render(render_libraw(frame), capture=libraw_capture(frame))

    def settings(self) -> dict:
        return {"render": dict(LIBRAW_SETTINGS)}

    def describe(self, frame: RawFrame) -> dict:
        return describe(self.name, frame, renders_file(frame))
