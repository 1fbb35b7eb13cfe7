"""`revisp-tf infer`: RAW files from RGB images, at full resolution, in the format asked for.

Formats: `npy` is the challenge submission format (packed RGGB, `round(raw * normaliser)` as
uint16); `dng` is a CFA DNG that LibRaw and darktable open; `png` is the RAW visualised for
people (bilinear demosaic, gray-world white balance, gamma). Every file is written to a
temporary name and renamed, so a failure never leaves a partial output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from revisp_tf.inference import group_patch_files, infer_tiled, stitch_patches
from revisp_tf.io import read_rgb, write_dng, write_npy, write_rgb
from revisp_tf.io.images import ImageReadError
from revisp_tf.isp.process import visualize_raw
from revisp_tf.isp.sensor import SensorSpec

FORMATS = ("npy", "dng", "png")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def expand_inputs(inputs) -> list[Path]:
    """Files as given, and the JPEG/PNG images inside any folder given."""
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{item}: no JPEG or PNG images in this folder")
            paths += found
        elif item.exists():
            paths.append(item)
        else:
            raise ValueError(f"{item}: no such file or folder")
    return paths


def check_even(rgb: np.ndarray, name) -> None:
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ImageReadError(f"{name}: {w}x{h} px; the bayer output needs an even width and height (crop one row/column)")


def write_output(bayer: np.ndarray, out_base: Path, fmt: str, sensor: SensorSpec) -> Path:
    """Writes one packed RGGB reconstruction as `out_base` + the format's suffix."""
    if fmt == "npy":
        return write_npy(out_base.with_suffix(".npy"), sensor.to_stored(bayer))
    if fmt == "dng":
        return write_dng(out_base.with_suffix(".dng"), bayer, sensor)
    if fmt == "png":
        return write_rgb(out_base.with_suffix(".png"), np.asarray(visualize_raw(bayer)))
    raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")


def reconstruct_files(
    inputs,
    model,
    out_dir,
    fmt: str = "npy",
    sensor: SensorSpec | None = None,
    *,
    tile: int = 512,
    overlap: int = 64,
    stitch: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Runs `model` on every input image (or on each stitched AIM 2022 frame) and writes the RAW files."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
    paths = expand_inputs(inputs)
    jobs = (
        [(scene, files) for scene, files in group_patch_files(paths).items()]
        if stitch
        else [(p.stem, [p]) for p in paths]
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, files in tqdm(jobs, desc="infer", unit="frame" if stitch else "image", disable=not progress):
        rgb = stitch_patches(files) if stitch else read_rgb(files[0])
        check_even(rgb, files[0] if not stitch else f"scene {name}")
        bayer = infer_tiled(model, rgb, tile=tile, overlap=overlap)
        written.append(write_output(bayer, out / name, fmt, sensor))
    return written
