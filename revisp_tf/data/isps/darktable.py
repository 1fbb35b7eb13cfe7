"""darktable (`darktable-cli`, Debian package `darktable`): a scene-referred render, far from a global function of the RAW.

Its default scene-referred pipeline (exposure +0.7 EV, filmic rgb) is far more phone-like than
LibRaw's plain render. darktable's decoder refuses some DNGs LibRaw reads, so it always renders
a temporary uncompressed DNG of the frame's normalised mosaic. In darktable 4.2 the default pipe
of that DNG is rawprepare, temperature, highlights, demosaic, exposure, colorin, filmic rgb,
colorout, gamma: nothing moves pixels (no flip, lens correction or crop); the size check and
`align.gradient_alignment_scores` guard that. Filmic rolls highlights off: sensor white renders
at about 234/255, under the overexposure threshold, so darktable pairs have far fewer
overexposed pixels than LibRaw's (only reconstructed highlights brighter than sensor white reach it).
The gains it applied are read from its own record of the render: the history it writes into the
temporary DNG's XMP sidecar (`darktable_capture`: the white balance module's coefficients and
the exposure module's exposure and black).
"""

from __future__ import annotations

import base64
import re
import struct
import tempfile
import zlib
from pathlib import Path

from revisp_tf.data.isps.common import Render, canonical_mosaic, describe, read_render, run_tool, write_frame_dng
from revisp_tf.data.raw_files import RawFrame, RawReadError, read_raw
from revisp_tf.io.metadata import CaptureMetadata
from revisp_tf.tools import find_tool, tool_version

DARKTABLE_SETTINGS = {
    "input": "temporary uncompressed DNG (revisp_tf.io.dng.write_dng) of the normalised canonical RGGB mosaic",
    "white_balance": "the file's camera gains (gray world where it has none), as the DNG's AsShotNeutral",
    "color_matrix": "the frame's camera -> sRGB matrix (linear sRGB where it has none) as ColorMatrix1, see common.frame_dng_colour",
    "presets": "none: fresh config dir, --library :memory:, --apply-custom-presets false",
    "capture": "white balance and exposure as darktable records them in the temporary DNG's XMP history",
    "output": "8-bit sRGB PNG (--icc-type SRGB), full size: --width 0 --height 0 --upscale false --hq true",
}
_TIMEOUT_S = 600


def darktable_cli() -> str:
    """Path of darktable-cli, or FileNotFoundError saying how to get it."""
    return find_tool("darktable-cli")


def darktable_version() -> str:
    """Version of the installed darktable-cli, e.g. '4.2.1'."""
    return tool_version(darktable_cli(), ("--version",), r"darktable-cli (\S+)")


def darktable_conf(version: str) -> dict[str, str]:
    """darktable-cli --conf settings: scene-referred workflow with filmic rgb, 8-bit PNG, an XMP sidecar of the input.

    Pinned so the render does not depend on a user's darktablerc. darktable 4.2 calls the workflow
    "scene-referred" (exposure +0.7 EV and filmic rgb) and sets chromatic adaptation apart (its
    default "legacy": the white balance module applies AsShotNeutral); from 4.4 the workflow names
    its tone mapper (5.x defaults to sigmoid) and adapts with color calibration.
    """
    # the sidecar (beside the temporary DNG) is darktable's record of the gains it applied
    output = {"plugins/imageio/format/png/bpp": "8", "write_sidecar_files": "on import"}
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


def history_params(xmp_text: str) -> dict[str, bytes]:
    """Operation name -> the params of its last enabled history item, from a darktable XMP (hex, or "gz" + zlib base64)."""
    out = {}
    for item in re.findall(r"<rdf:li\b[^>]*?darktable:operation=.*?/>", xmp_text, re.S):
        fields = dict(re.findall(r'darktable:(\w+)="([^"]*)"', item))
        if fields.get("enabled") != "1" or "params" not in fields:
            continue
        p = fields["params"]
        out[fields["operation"]] = zlib.decompress(base64.b64decode(p[4:])) if p.startswith("gz") else bytes.fromhex(p)
    return out


def darktable_capture(xmp_text: str, where) -> CaptureMetadata:
    """The gains darktable applied, from its XMP history: the white balance (temperature) and exposure modules.

    temperature params start with the (R, G, B) coefficients (float32); exposure's with mode (int),
    black, exposure (EV). Exposure maps black -> 0 and 2^-EV -> 1: a gain of 1 / (2^-EV - black).
    """
    params = history_params(xmp_text)
    if "temperature" not in params:
        raise RawReadError(f"{where}: darktable's history has no enabled white balance (temperature) module")
    r, g, b = struct.unpack_from("<3f", params["temperature"])
    gain = 1.0
    if "exposure" in params:
        _, black, ev = struct.unpack_from("<i2f", params["exposure"])
        gain = 1.0 / (2.0**-ev - black)
    return CaptureMetadata(wb=(r, g, b), exposure_gain=gain, source="darktable history (temperature, exposure)")


def run_darktable(frame: RawFrame) -> tuple[object, CaptureMetadata]:
    """(uint8 sRGB render aligned with `canonical_mosaic` of the frame's mosaic, the gains darktable applied)."""
    version = darktable_version()  # first, so a missing darktable-cli fails before any work
    expected = canonical_mosaic(frame.mosaic, frame.cfa).shape
    with tempfile.TemporaryDirectory(prefix="revisp_darktable_") as tmp:
        work = Path(tmp)
        dng, out = write_frame_dng(frame, work / "frame.dng"), work / "render.png"
        run_tool(frame, "darktable-cli", darktable_command(dng, out, work, version), _TIMEOUT_S)
        rgb = read_render(frame, "darktable-cli", out)
        xmp = dng.with_name(dng.name + ".xmp")
        if not xmp.is_file():
            raise RawReadError(f"{frame.source}: darktable-cli wrote no XMP sidecar to read its white balance and exposure from")
        capture = darktable_capture(xmp.read_text(), frame.source)
    if rgb.shape[:2] != expected:
        raise RawReadError(f"{frame.source}: darktable rendered {rgb.shape[:2]}, the mosaic is {expected}; cannot align")
    return rgb, capture


def render_darktable(source, **raw_kwargs):
    """uint8 sRGB darktable render (H', W', 3) aligned with `canonical_mosaic` of the file's mosaic.

    `source` is a RawFrame or a path read with `read_raw(path, **raw_kwargs)`. darktable renders a
    temporary DNG of the frame's sensor data (see DARKTABLE_SETTINGS), removed afterwards.
    """
    darktable_version()  # first, so a missing darktable-cli fails before any work
    frame = source if isinstance(source, RawFrame) else read_raw(source, **raw_kwargs)
    return run_darktable(frame)[0]


class Darktable:
    """The darktable ISP (see the module doc)."""

    name = "darktable"
    jpeg_quality = 95

    def render(self, frame: RawFrame) -> Render:
        rgb, capture = run_darktable(frame)
        return Render(rgb, capture=capture)

    def settings(self) -> dict:
        version = darktable_version()
        return {"darktable_version": version, "render": {**DARKTABLE_SETTINGS, "conf": darktable_conf(version)}}

    def describe(self, frame: RawFrame) -> dict:
        return describe(self.name, frame, False)
