"""RawTherapee (`rawtherapee-cli`, Debian package `rawtherapee`): a phone-like render with local operators.

Its bundled profiles (plain-text `.pp3`) render with operators no global inverse can undo: the
`Pop` profiles tone-map locally (edge-preserving decomposition), adapt colour (CIECAM) and add a
graduated vignette; `Standard Film Curve - ISO High` denoises (directional pyramid, luminance and
median). The render is pinned so it does not depend on the user's RawTherapee:
- a fresh settings and cache folder (`RT_SETTINGS`, `RT_CACHE`), no `-d` (the user's default
  profile) and no `-s` (sidecars): RawTherapee's neutral values, then the chosen profile, then
  GEOMETRY_PINS, which switch off everything that moves pixels (crop, resize, rotation, flips,
  perspective, distortion, lens profile, chromatic-aberration correction), whatever the profile says;
- it renders a temporary uncompressed DNG of the frame's normalised mosaic, as darktable does.

RawTherapee does not render the demosaic's border: its output lacks a few pixels on every side
(1148x1726 for a 1156x1734 mosaic). Where the render lies on the mosaic is found, not assumed:
`align.locate_render` scores every placement inside the mosaic (and 2 px beyond, as competitors)
by gradient correlation. An odd offset loses one more row or column of the RGB so that the mosaic
keeps its RGGB phase; the mosaic itself is never resampled.

The gains it applies follow from the profile (`profile_capture`): its white balance setting
(RawTherapee's neutral one, "Camera", applies the DNG's AsShotNeutral: the frame's white balance)
and its exposure compensation (2^EV; none known when the profile asks for auto exposure).
"""

from __future__ import annotations

import configparser
import dataclasses
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from revisp_tf.data.align import render as align
from revisp_tf.data.isps.common import Render, canonical_mosaic, describe, read_render, run_tool, white_balance, write_frame_dng
from revisp_tf.data.raw_files import RawFrame, RawReadError, normalise
from revisp_tf.io.metadata import CaptureMetadata
from revisp_tf.tools import find_tool, tool_version

DEFAULT_PROFILE = "Pop 2 Lab"
NEUTRAL = "Neutral"  # RawTherapee's built-in neutral values (no profile file)
# Everything that would move pixels off the mosaic grid, switched off after any profile.
GEOMETRY_PINS = {
    "Crop": {"Enabled": "false"},
    "Resize": {"Enabled": "false"},
    "Coarse Transformation": {"Rotate": "0", "HorizontalFlip": "false", "VerticalFlip": "false"},
    "Rotation": {"Degree": "0"},
    "Perspective": {"Method": "simple", "Horizontal": "0", "Vertical": "0"},
    "Distortion": {"Amount": "0"},
    "LensProfile": {"LcMode": "none", "UseDistortion": "false", "UseCA": "false"},
    "CACorrection": {"Red": "0", "Blue": "0"},
    "RAW": {"CA": "false"},
}
RAWTHERAPEE_SETTINGS = {
    "input": "temporary uncompressed DNG (revisp_tf.io.dng.write_dng) of the normalised canonical RGGB mosaic",
    "white_balance": "the file's camera gains (gray world where it has none), as the DNG's AsShotNeutral",
    "color_matrix": "the frame's camera -> sRGB matrix (linear sRGB where it has none) as ColorMatrix1, see common.frame_dng_colour",
    "pipeline": "neutral values, then the profile, then geometry_pins; fresh RT_SETTINGS and RT_CACHE, no -d, no -s",
    "output": "8-bit sRGB PNG (-n -b8), placed on the mosaic by align.locate_render",
}
MIN_MARGIN = 0.02  # a placement must beat every other by this much gradient correlation
_TIMEOUT_S = 600


def rawtherapee_cli() -> str:
    """Path of rawtherapee-cli, or FileNotFoundError saying how to get it."""
    return find_tool("rawtherapee-cli")


def rawtherapee_version() -> str:
    """Version of the installed rawtherapee-cli, e.g. '5.9'."""
    return tool_version(rawtherapee_cli(), (), r"RawTherapee, version ([^,\s]+)")


def bundled_profiles() -> dict[str, Path]:
    """Profile name (file stem) -> .pp3 of the profiles installed with rawtherapee-cli (`<prefix>/share/rawtherapee/profiles`)."""
    root = Path(rawtherapee_cli()).resolve().parents[1] / "share" / "rawtherapee" / "profiles"
    return {p.stem: p for p in sorted(root.rglob("*.pp3"))}


def resolve_profile(profile: str) -> Path | None:
    """The .pp3 of a bundled profile name or of a path (None for NEUTRAL); ValueError listing the names if unknown."""
    if profile == NEUTRAL:
        return None
    if profile.endswith(".pp3"):
        path = Path(profile)
        if not path.is_file():
            raise ValueError(f"profile: {path} is not a file; expected a RawTherapee .pp3 profile")
        return path
    bundled = bundled_profiles()
    if profile not in bundled:
        names = ", ".join(repr(n) for n in [NEUTRAL, *bundled])
        raise ValueError(f"profile: no RawTherapee profile named {profile!r}; expected a .pp3 path or one of {names}")
    return bundled[profile]


def pp3_text(sections: dict[str, dict[str, str]]) -> str:
    """A .pp3 profile holding `sections` ({section: {key: value}})."""
    return "\n".join(f"[{s}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items()) for s, keys in sections.items())


def rawtherapee_command(dng: Path, out: Path, profile: Path | None, pins: Path, jpeg_quality: int | None = None) -> list[str]:
    """rawtherapee-cli command rendering `dng` to `out`: neutral, then `profile`, then `pins`.

    `out` is an 8-bit PNG, or a JPEG of `jpeg_quality` (RawTherapee's own encoder, 4:2:2) if one is given.
    """
    profiles = ([] if profile is None else ["-p", str(profile)]) + ["-p", str(pins)]
    fmt = ["-n", "-b8"] if jpeg_quality is None else [f"-j{int(jpeg_quality)}"]
    return [rawtherapee_cli(), "-q", "-o", str(out), *fmt, "-Y", *profiles, "-c", str(dng)]


@dataclasses.dataclass(frozen=True)
class Geometry:
    """RawTherapee's own geometry tools, as a camera's JPEG would have them, and the exact map they make.

    The map was read in RawTherapee's source (rtengine/iptransform.cc `transformGeneral`,
    ipresize.cc `Lanczos`) and confirmed on 5.9 renders of a real DNG (docs/alignment.md: each tool
    alone and all four together, the render without geometry resampled by this map matches the one
    with it to 0.05 px median per 96 px tile; the other sign of the rotation or distortion is 15-26 px
    off, the exact size ratio instead of the Scale 0.12 px). For an output pixel q = (x, y):
    1. [Resize] (applies to the cropped area): c = (q + 0.5) / scale - 0.5; the output has
       round(crop side * scale) pixels (halves up);
    2. [Crop]: t = c + (X, Y), in the transformed image, which has the image's size;
    3. [Rotation] and [Distortion], about the image centre m = (W/2 - 0.5, H/2 - 0.5):
       D = R(degree) (t - m), with R = [[cos, -sin], [sin, cos]] in (x, y) = (column, row);
       s = 1 - amount + amount |D| / R_max, R_max = half the image diagonal; source = m + s D;
    all in the coordinates of RawTherapee's image before any geometry (the render without it).
    [Common Properties for Transformations] AutoFill is off (it would add a scale found by
    bisection), so `inside_crop` keeps the crop where the source is inside the image.

    Args:
      crop: (X, Y, W, H) of [Crop], in the transformed image's pixels.
      scale: [Resize] Scale (1: no resize).
      rotation_deg: [Rotation] Degree.
      distortion: [Distortion] Amount.
    """

    crop: tuple[int, int, int, int]
    scale: float = 1.0
    rotation_deg: float = 0.0
    distortion: float = 0.0

    def sections(self) -> dict[str, dict[str, str]]:
        """The .pp3 sections that make this geometry (applied after GEOMETRY_PINS)."""
        x, y, w, h = self.crop
        return {
            "Crop": {"Enabled": "true", "X": str(x), "Y": str(y), "W": str(w), "H": str(h), "FixedRatio": "false"},
            "Resize": {
                "Enabled": "true" if self.scale != 1.0 else "false",
                "Scale": repr(float(self.scale)),
                "AppliesTo": "Cropped area",
                "Method": "Lanczos",
                "DataSpecified": "0",
                "AllowUpscaling": "false",
            },
            "Rotation": {"Degree": repr(float(self.rotation_deg))},
            "Distortion": {"Amount": repr(float(self.distortion))},
            "Common Properties for Transformations": {"AutoFill": "false"},
        }

    def output_shape(self) -> tuple[int, int]:
        """(rows, columns) of the render."""
        return tuple(int(np.floor(n * self.scale + 0.5)) for n in (self.crop[3], self.crop[2]))

    def source(self, q: np.ndarray, image_shape) -> np.ndarray:
        """(n, 2) output pixels (x, y) -> where they come from in the image before geometry, (x, y)."""
        h, w = image_shape
        mid = np.array([w / 2 - 0.5, h / 2 - 0.5])
        t = (np.asarray(q, np.float64) + 0.5) / self.scale - 0.5 + np.asarray(self.crop[:2], np.float64) - mid
        a = np.radians(self.rotation_deg)
        d = t @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T
        s = 1.0 - self.distortion + self.distortion * np.linalg.norm(d, axis=-1, keepdims=True) / (np.hypot(w, h) / 2)
        return mid + s * d


def inside_crop(image_shape, scale=1.0, rotation_deg=0.0, distortion=0.0, offset=(3, -2), border=2) -> Geometry:
    """The geometry with the largest crop, shifted by `offset` (x, y) off centre, whose every pixel comes from `border` px inside the image."""
    h, w = image_shape
    for margin in range(max(abs(offset[0]), abs(offset[1])) + 2, min(h, w) // 3, 2):
        crop = (margin + offset[0], margin + offset[1], w - 2 * margin, h - 2 * margin)
        g = Geometry(crop, scale, rotation_deg, distortion)
        oh, ow = g.output_shape()
        edge = np.concatenate(
            [np.stack([np.arange(ow), np.full(ow, y)], -1) for y in (0, oh - 1)]
            + [np.stack([np.full(oh, x), np.arange(oh)], -1) for x in (0, ow - 1)]
        ).astype(np.float64)
        src = g.source(edge, image_shape)
        if np.all((src >= border) & (src <= np.array([w - 1 - border, h - 1 - border]))):
            return g
    raise ValueError(f"no crop of a {h}x{w} image keeps the geometry inside it")


def profile_settings(profile: Path | None) -> dict[str, dict[str, str]]:
    """The sections of a .pp3 profile (none for NEUTRAL), keys as written."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    if profile is not None:
        parser.read_string(Path(profile).read_text(errors="replace"))
    return {s: dict(parser[s]) for s in parser.sections()}


def profile_capture(profile: Path | None, frame: RawFrame) -> CaptureMetadata | None:
    """The gains RawTherapee applies to `frame` under `profile`: the camera white balance and 2^Compensation.

    None if the profile sets another white balance than the camera's (RawTherapee's neutral
    "Camera"); exposure gain None if it asks for auto exposure.
    """
    sections = profile_settings(profile)
    if sections.get("White Balance", {}).get("Setting", "Camera") != "Camera":
        return None
    exposure = sections.get("Exposure", {})
    gain = None if exposure.get("Auto", "false") == "true" else 2.0 ** float(exposure.get("Compensation", "0"))
    wb, source = white_balance(frame)
    return CaptureMetadata(wb=wb, exposure_gain=gain, source=f"rawtherapee profile (camera white balance: {source})")


def place_render(frame: RawFrame, rgb: np.ndarray) -> Render:
    """The render located on the frame's canonical mosaic and cropped to its RGGB phase (see the module doc)."""
    raw = canonical_mosaic(normalise(frame), frame.cfa)
    try:
        found, win = align.locate_render(rgb, raw)
    except ValueError as e:
        raise RawReadError(f"{frame.source}: cannot align RawTherapee's render: {e}") from None
    if win < MIN_MARGIN:
        raise RawReadError(
            f"{frame.source}: RawTherapee's render aligns at {found} by a margin of only {win:.4f} "
            f"(< {MIN_MARGIN}); too little structure to prove the alignment"
        )
    cropped, origin = align.crop_to_phase(rgb, found, raw.shape)
    alignment = {
        "method": "align.locate_render: gradient correlation of every placement inside the mosaic, +-2 px beyond",
        "rendered_shape": list(rgb.shape[:2]),
        "found_offset": list(found),
        "margin": win,
        "min_margin": MIN_MARGIN,
    }
    return Render(cropped, origin, alignment)


class RawTherapee:
    """The RawTherapee ISP with one profile (a bundled name, NEUTRAL, or a .pp3 path; see the module doc)."""

    name = "rawtherapee"
    jpeg_quality = 92  # as a phone writes it

    def __init__(self, profile: str | None = None):
        self.profile = DEFAULT_PROFILE if profile is None else str(profile)
        rawtherapee_cli()  # a missing tool fails before the profile is looked up
        self.profile_path = resolve_profile(self.profile)

    def render(self, frame: RawFrame) -> Render:
        placed = place_render(frame, self.render_rgb(frame))
        return dataclasses.replace(placed, capture=profile_capture(self.profile_path, frame))

    def render_rgb(self, frame: RawFrame) -> np.ndarray:
        """RawTherapee's uint8 render as it comes, before it is placed on the mosaic."""
        with tempfile.TemporaryDirectory(prefix="revisp_rawtherapee_") as tmp:
            return read_render(frame, "rawtherapee-cli", self.render_file(frame, Path(tmp) / "render.png"))

    def render_file(self, frame: RawFrame, out: Path, geometry: Geometry | None = None, jpeg_quality: int | None = None) -> Path:
        """Writes RawTherapee's render of `frame` to `out` (PNG, or JPEG of `jpeg_quality`), with `geometry` if given.

        Without a geometry every tool that moves pixels is pinned off (GEOMETRY_PINS); with one, its
        sections follow the pins (a camera-like JPEG of known geometry: `Geometry.source`).
        """
        with tempfile.TemporaryDirectory(prefix="revisp_rawtherapee_") as tmp:
            work = Path(tmp)
            dng, render, pins = write_frame_dng(frame, work / "frame.dng"), work / Path(out).name, work / "pins.pp3"
            pins.write_text(pp3_text({**GEOMETRY_PINS, **({} if geometry is None else geometry.sections())}))
            env = {**os.environ, "RT_SETTINGS": str(work / "settings"), "RT_CACHE": str(work / "cache")}
            cmd = rawtherapee_command(dng, render, self.profile_path, pins, jpeg_quality)
            run_tool(frame, "rawtherapee-cli", cmd, _TIMEOUT_S, env)
            if not render.is_file():
                raise RawReadError(f"{frame.source}: rawtherapee-cli exited without writing a render")
            shutil.move(str(render), str(out))  # the finished file, or nothing
        return Path(out)

    def settings(self) -> dict:
        path = self.profile_path
        profile = {
            "profile": self.profile,
            "profile_file": None if path is None else str(path.resolve()),
            "profile_sha256": None if path is None else hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        render = {**RAWTHERAPEE_SETTINGS, **profile, "geometry_pins": GEOMETRY_PINS}
        return {"rawtherapee_version": rawtherapee_version(), "render": render}

    def describe(self, frame: RawFrame) -> dict:
        return describe(self.name, frame, False)
