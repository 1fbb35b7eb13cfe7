"""Infinite-ISP (10x Engineers' Infinite-ISP Reference Model): a sensor's own tuned camera ISP, with 3A.

The closest thing here to a camera's JPEG engine: dead pixel correction, black level, bayer noise
reduction, auto white balance and auto exposure (iterated until the exposure converges), white
balance, demosaic, CCM, gamma, sharpening, 2D noise reduction, in Python/NumPy. It is not a
package: `make-pairs --isp infinite-isp --profile CONFIG.yml` runs a checkout of it, found through
the environment variable REVISP_INFINITE_ISP, with its Python dependencies (the `infinite-isp`
extra). CONFIG.yml is the sensor's tuned configuration (one per camera); for each RAW:
- the sensor fields come from the RAW being rendered (SENSOR_FIELDS: CFA, bit depth and range,
  size, black and saturation levels per channel), so one config serves a camera's 8- and 10-bit
  files; the OECF LUT is indexed by the config's bit depth, so it is switched off for a RAW of
  another depth;
- PINS switch off what would move pixels off the mosaic grid (crop, invalid-region crop, scale)
  or draw on them (the on-screen logo), and the YUV output format, whatever the config says;
- the ISP runs in a child process from a scratch folder (it writes `out_frames/` under its
  working directory; the checkout may be read-only) on a headerless copy of the mosaic.
Its output has the mosaic's size and is pixel-aligned with it (Malvar-He-Cutler demosaic, no
geometry): `canonical_mosaic` crops it to the RGGB phase like the mosaic. The 3A's gains it
applied (white balance, and the digital gain its auto exposure picked) are read back from the
InfiniteISP object after `execute()` and recorded as the frame's capture metadata.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from revisp_tf.data.isps.common import Render, canonical_mosaic
from revisp_tf.data.raw_files import RawFrame, RawReadError
from revisp_tf.io.metadata import CaptureMetadata

ENV = "REVISP_INFINITE_ISP"
CHECKOUT_MISSING = f"Infinite-ISP not found: set {ENV} to a checkout of the Infinite-ISP Reference Model (the folder holding infinite_isp.py)"
DEPENDENCIES = ("fxpmath", "matplotlib", "scipy", "yaml", "rawpy", "tqdm")
DEPENDENCIES_MISSING = "Infinite-ISP's Python dependencies are missing ({}): pip install 'revisp-tf[infinite-isp]'"
PROFILE_MISSING = "profile: --isp infinite-isp needs the sensor's Infinite-ISP config (--profile CONFIG.yml)"
BIT_DEPTHS = (8, 10, 12, 14)  # those its gamma LUTs cover
# Settings of the config that would move, scale or draw on pixels, or leave YUV out: pinned off.
PINS = {
    "crop": {"is_enable": False},
    "invalid_region_crop": {"is_enable": False},
    "scale": {"is_enable": False},
    "on_screen_display": {"is_enable": False},
    "yuv_conversion_format": {"is_enable": False},
    "rgb_conversion": {"is_enable": True},
}
SENSOR_FIELDS = "sensor_info (bayer_pattern, bit_depth, range, width, height), black_level_correction (*_offset, *_sat)"
INFINITE_ISP_SETTINGS = {
    "input": "headerless copy of the frame's mosaic as stored (uint8 up to 8 bits, uint16 above), clipped to the bit depth's range",
    "sensor": f"{SENSOR_FIELDS} from the RAW; bit depth = the smallest of {BIT_DEPTHS} holding its white level; OECF off unless the config's bit depth is the RAW's",
    "pins": "crop, invalid-region crop, scale, on-screen logo and YUV output off, RGB output on, whatever the config says",
    "run": "a child process in a scratch folder, the checkout named by REVISP_INFINITE_ISP on its path, no bytecode written",
    "output": "8-bit RGB of the mosaic's size, pixel-aligned with it",
}
_TIMEOUT_S = 1800
# Runs in the child: the ISP's own execute(), its output and the gains it applied (see InfiniteISP.execute_with_3a_statistics).
_DRIVER = """
import json, sys
import numpy as np
checkout, work = sys.argv[1], sys.argv[2]
sys.path.insert(0, checkout)
from infinite_isp import InfiniteISP
from util.utils import get_approximate
isp = InfiniteISP(work, work + "/config.yml")
out = {}
isp.save_output_obj.save_pipeline_output = lambda name, img, config: out.update(rgb=img)
isp.execute()
np.save(work + "/render.npy", np.asarray(out["rgb"]))
wb, dga = isp.parm_wbc, isp.parm_dga
# the white balance module applies its gains as U16.8 fixed point
gains = [float(get_approximate(wb[k], 16, 8)[0]) if wb["is_enable"] else 1.0 for k in ("r_gain", "b_gain")]
json.dump({
    "wb_applied": gains,
    "awb_gains": None if isp.awb_gains is None else [float(g) for g in isp.awb_gains],
    "dga_current_gain": int(isp.dga_current_gain),
    "digital_gain": float(dga["gain_array"][int(isp.dga_current_gain)]),
    "ae_feedback": None if isp.ae_feedback is None else int(isp.ae_feedback),
}, open(work + "/gains.json", "w"))
"""


def infinite_isp_checkout() -> Path:
    """The checkout REVISP_INFINITE_ISP names, or FileNotFoundError saying what to set."""
    value = os.environ.get(ENV, "")
    path = Path(value)
    if not value or not (path / "infinite_isp.py").is_file():
        raise FileNotFoundError(CHECKOUT_MISSING + (f"; {value} has none" if value else ""))
    return path.resolve()


def check_dependencies() -> None:
    """FileNotFoundError naming the extra if a Python package the ISP imports is missing."""
    missing = [m for m in DEPENDENCIES if importlib.util.find_spec(m) is None]
    if missing:
        raise FileNotFoundError(DEPENDENCIES_MISSING.format(", ".join(missing)))


def load_config(path) -> dict:
    """An Infinite-ISP config (YAML), or ValueError naming the file and what was expected."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"profile: cannot read {path} as YAML ({e}); expected an Infinite-ISP config") from None
    sections = ("sensor_info", "black_level_correction", "oecf", "digital_gain", "white_balance", *PINS)
    missing = [s for s in sections if not isinstance(config, dict) or not isinstance(config.get(s), dict)]
    if missing:
        raise ValueError(f"profile: {path} has no {', '.join(missing)} section(s); expected an Infinite-ISP config")
    return config


def bit_depth(white: float) -> int:
    """The smallest depth Infinite-ISP renders (BIT_DEPTHS) whose range holds `white`."""
    for depth in BIT_DEPTHS:
        if white <= 2**depth - 1:
            return depth
    raise ValueError(f"white level {white:g} needs more than {BIT_DEPTHS[-1]} bits; Infinite-ISP renders {BIT_DEPTHS[0]}-{BIT_DEPTHS[-1]} bit mosaics")


def channel_names(cfa: str) -> list[str]:
    """Infinite-ISP's channel names (r, gr, gb, b) of the 2x2 tile positions of `cfa`; gr is the green in the red row."""
    red_row = cfa.index("R") // 2
    return ["r" if c == "R" else "b" if c == "B" else "gr" if i // 2 == red_row else "gb" for i, c in enumerate(cfa)]


def sensor_config(config: dict, frame: RawFrame) -> dict:
    """`config` with its sensor fields set from `frame` (see the module doc) and PINS applied."""
    out = copy.deepcopy(config)
    depth = bit_depth(frame.white)
    sensor = out["sensor_info"]
    if depth != sensor.get("bit_depth"):
        out["oecf"]["is_enable"] = False  # its LUT maps values of the config's depth
    h, w = frame.mosaic.shape
    sensor.update(bayer_pattern=frame.cfa.lower(), bit_depth=depth, range=2**depth - 1, width=w, height=h)
    blc = out["black_level_correction"]
    for name, black in zip(channel_names(frame.cfa), frame.black):
        blc[f"{name}_offset"], blc[f"{name}_sat"] = float(black), float(frame.white)
    for section, values in PINS.items():
        out[section].update(values)
    out["platform"] = {**out.get("platform", {}), "filename": "frame.raw", "disable_progress_bar": True, "save_lut": False}
    return out


def write_mosaic(frame: RawFrame, path: Path, depth: int) -> None:
    """The mosaic as Infinite-ISP reads a headerless file: uint8 up to 8 bits, uint16 above, within the range."""
    if frame.mosaic.dtype.kind == "f":
        raise RawReadError(f"{frame.source}: a float mosaic; Infinite-ISP renders integer sensor values")
    clipped = np.minimum(frame.mosaic, 2**depth - 1)
    clipped.astype(np.uint8 if depth <= 8 else "<u2").tofile(path)


def capture_of(gains: dict) -> CaptureMetadata:
    """The gains the ISP applied (its driver's record) as capture metadata: WB (R, 1, B) and the digital gain."""
    r, b = gains["wb_applied"]
    return CaptureMetadata(wb=(r, 1.0, b), exposure_gain=gains["digital_gain"], source="infinite-isp 3A")


class InfiniteIsp:
    """Infinite-ISP with one sensor config (see the module doc)."""

    name = "infinite-isp"
    jpeg_quality = 95

    def __init__(self, profile: str | None = None):
        self.checkout = infinite_isp_checkout()
        check_dependencies()
        if profile is None:
            raise ValueError(PROFILE_MISSING)
        self.profile = Path(profile)
        self.config = load_config(self.profile)

    def run(self, frame: RawFrame) -> tuple[np.ndarray, dict]:
        """(uint8 RGB of the whole mosaic, the driver's record of the gains applied) for `frame`."""
        config = sensor_config(self.config, frame)
        with tempfile.TemporaryDirectory(prefix="revisp_infinite_isp_") as tmp:
            work = Path(tmp)
            write_mosaic(frame, work / "frame.raw", config["sensor_info"]["bit_depth"])
            (work / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work / "mpl")}
            cmd = [sys.executable, "-c", _DRIVER, str(self.checkout), str(work)]
            try:
                proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise RawReadError(f"{frame.source}: Infinite-ISP took over {_TIMEOUT_S} s; gave up") from None
            if proc.returncode != 0:
                log = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
                raise RawReadError(f"{frame.source}: Infinite-ISP failed to render it (exit {proc.returncode}): {log}")
            rgb = np.load(work / "render.npy")
            gains = json.loads((work / "gains.json").read_text())
        if rgb.shape != (*frame.mosaic.shape, 3) or rgb.dtype != np.uint8:
            raise RawReadError(f"{frame.source}: Infinite-ISP rendered {rgb.shape} {rgb.dtype}; expected the mosaic's size in uint8 RGB")
        return rgb, gains

    def render(self, frame: RawFrame) -> Render:
        rgb, gains = self.run(frame)
        return Render(canonical_mosaic(rgb, frame.cfa), capture=capture_of(gains))

    def settings(self) -> dict:
        commit = self.checkout / "UPSTREAM_COMMIT"
        return {
            "infinite_isp_checkout": str(self.checkout),
            "infinite_isp_commit": commit.read_text().strip() if commit.is_file() else None,
            "render": {
                **INFINITE_ISP_SETTINGS,
                "profile": str(self.profile.resolve()),
                "profile_sha256": hashlib.sha256(self.profile.read_bytes()).hexdigest(),
                "pinned": PINS,
            },
        }

    def describe(self, frame: RawFrame) -> dict:
        return {"isp": "infinite-isp (the config's 3A, CCM, gamma; sensor fields from the RAW)", "color_matrix_used": "the config's CCM"}
