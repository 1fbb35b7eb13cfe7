"""How RAW editors show a DNG: LibRaw (camera white balance), darktable and RawTherapee at their defaults.

Each `render_*` takes a DNG path and returns the editor's 8-bit sRGB render as float (H, W, 3) in
[0, 1], the way a user who opens the file and exports it without touching anything sees it:

- LibRaw (rawpy `postprocess(use_camera_wb=True)`): AsShotNeutral white balance, ColorMatrix1,
  AHD demosaic, BT.709 curve, auto-brightening. Same size as the mosaic.
- darktable (`darktable-cli`, Debian package `darktable`), a fresh config and library: the
  installed darktablerc's defaults (4.2: scene-referred workflow, exposure +0.7 EV, filmic rgb,
  "legacy" chromatic adaptation: the white balance module applies AsShotNeutral). Same size as
  the mosaic.
- RawTherapee (`rawtherapee-cli -d`, Debian package `rawtherapee`), a fresh config: its default
  raw profile (5.9: "Auto-Matched Curve - ISO Low"; camera white balance, the DNG's matrix as
  the "camera standard" input profile). 4 px smaller on each side.

A missing editor raises FileNotFoundError naming the Debian package to install.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import rawpy

from revisp_tf.io.images import ImageReadError, read_rgb
from revisp_tf.tools import find_tool

_TIMEOUT_S = 300


def render_libraw(dng) -> np.ndarray:
    """LibRaw's default render with the file's white balance (rawpy `use_camera_wb=True`)."""
    with rawpy.imread(str(dng)) as raw:
        return raw.postprocess(use_camera_wb=True).astype(np.float32) / 255.0


def _run(cmd: list[str], out: Path, dng, env=None) -> np.ndarray:
    """Runs an editor's export and reads its output, or RuntimeError with the log's tail."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{dng}: {Path(cmd[0]).name} took over {_TIMEOUT_S} s; gave up") from None
    log = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{dng}: {Path(cmd[0]).name} failed to render it (exit {proc.returncode}): {log}")
    try:
        return read_rgb(out)
    except ImageReadError as e:
        raise RuntimeError(f"{dng}: {Path(cmd[0]).name} wrote an unreadable render ({e})") from None


def render_darktable(dng) -> np.ndarray:
    """darktable-cli's render with a fresh config directory and an in-memory library."""
    exe = find_tool("darktable-cli")
    with tempfile.TemporaryDirectory(prefix="revisp_darktable_") as tmp:
        work = Path(tmp)
        out = work / "render.png"
        state = ["--configdir", str(work / "config"), "--cachedir", str(work / "cache"), "--tmpdir", tmp]
        return _run([exe, str(dng), str(out), "--core", *state, "--library", ":memory:"], out, dng)


def render_rawtherapee(dng) -> np.ndarray:
    """rawtherapee-cli's render with its default raw profile (`-d`) and a fresh config directory."""
    exe = find_tool("rawtherapee-cli")
    with tempfile.TemporaryDirectory(prefix="revisp_rawtherapee_") as tmp:
        out = Path(tmp) / "render.png"
        # RawTherapee keeps its options under $XDG_CONFIG_HOME (and $HOME); a fresh one is its default.
        env = os.environ | {"HOME": tmp, "XDG_CONFIG_HOME": f"{tmp}/config", "XDG_CACHE_HOME": f"{tmp}/cache"}
        return _run([exe, "-o", str(out), "-n", "-d", "-Y", "-c", str(dng)], out, dng, env)


# Editor name -> render function, in the order reports list them.
RENDERERS = {"libraw": render_libraw, "darktable": render_darktable, "rawtherapee": render_rawtherapee}
