"""`revisp-tf infer`: RAW files from RGB images, at full resolution, in the format asked for.

Formats: `npy` is the challenge submission format (packed RGGB, `round(raw * normaliser)` as
uint16); `dng` is a CFA DNG that LibRaw, darktable and RawTherapee open, its colour tags fitted
to the input image (`revisp_tf.io.dng`); `png` is the RAW visualised for
people (bilinear demosaic, gray-world white balance, gamma). Every file is written to a
temporary name and renamed, so a failure never leaves a partial output.

Memory: an image is decoded once, as its 8- or 16-bit samples, and goes through the model tile
by tile (`revisp_tf.infer.tiled.TiledInference`). Every format is written row band by row band as
the tiles finish, so memory beyond the input does not grow with the image: `npy` and `dng`
straight into the file (`dng`'s fitted colour tags at the end, `io.dng.write_dng_bands`); `png`,
whose gray-world white balance needs the whole frame, through a scratch file of the bands
beside the output, read back in row blocks and encoded as it goes (`io.images.write_png_rows`).
Long frames show progress: tiles done / total.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from revisp_tf.checks import check_choice
from revisp_tf.choices import OUTPUT_FORMATS
from revisp_tf.data.layout import RGB_SUFFIXES
from revisp_tf.infer.aim22 import group_patch_files, stitch_patches
from revisp_tf.infer.tiled import TiledInference
from revisp_tf.io.atomic import atomic_write, scratch_file
from revisp_tf.infer.tiling import DEFAULT_OVERLAP, DEFAULT_TILE
from revisp_tf.io.dng import write_dng_bands
from revisp_tf.io.images import ImageReadError, read_rgb_samples, write_png_rows
from revisp_tf.isp.process import frame_wb_gains, visualize_raw_uint8
from revisp_tf.isp.sensor import SensorSpec

_ROWS_PER_WRITE = 16
_PNG_BLOCK_ROWS = 64  # packed rows visualised at a time


def expand_inputs(inputs) -> list[Path]:
    """Files as given, and the JPEG/PNG images inside any folder given."""
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in RGB_SUFFIXES)
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


def write_npy_bands(path: Path, shape: tuple[int, int, int], bands, sensor: SensorSpec) -> Path:
    """Writes the challenge .npy (stored uint16) from (first row, rows) bands given top to bottom, as they come."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint16)), "fortran_order": False, "shape": shape}
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        written = 0
        for y0, rows in bands:
            if y0 != written:
                raise RuntimeError(f"{path}: rows {y0}.. arrived after {written} rows; expected them in order")
            for k in range(0, len(rows), _ROWS_PER_WRITE):  # small conversion temporaries, whatever the width
                f.write(sensor.to_stored(rows[k : k + _ROWS_PER_WRITE]).tobytes())
            written += len(rows)
        if written != shape[0]:
            raise RuntimeError(f"{path}: {written} of {shape[0]} rows were produced")
    return path


def write_png_bands(path: Path, shape: tuple[int, int, int], bands) -> Path:
    """The PNG of `visualize_raw` (gray-world white balance) of a packed frame given as (first row, rows) bands.

    The bands go to a scratch float32 file beside `path` as they come while the channel sums add
    up (the gray world needs the whole frame); the frame is then read back in blocks of packed
    rows, each with one row more on either side so that the demosaic sees what it would in the
    whole frame, visualised with the frame's gains and encoded as it goes.
    """
    h, w, _ = shape
    row_bytes = w * 4 * 4
    sums = np.zeros(4, np.float64)
    with scratch_file(path.with_suffix(".f32")) as scratch:
        with open(scratch, "wb") as f:
            written = 0
            for y0, rows in bands:
                if y0 != written:
                    raise RuntimeError(f"{path}: rows {y0}.. arrived after {written} rows; expected them in order")
                rows = np.asarray(rows, np.float32)
                f.write(rows.tobytes())
                sums += rows.sum(axis=(0, 1), dtype=np.float64)
                written += len(rows)
        if written != h:
            raise RuntimeError(f"{path}: {written} of {h} rows were produced")
        gains = frame_wb_gains(sums / (h * w))  # the frame's gray-world gains, from its channel means

        def blocks():
            with open(scratch, "rb") as f:
                for a in range(0, h, _PNG_BLOCK_ROWS):
                    b = min(a + _PNG_BLOCK_ROWS, h)
                    lo, hi = max(a - 1, 0), min(b + 1, h)
                    f.seek(lo * row_bytes)
                    units = np.fromfile(f, np.float32, (hi - lo) * w * 4).reshape(hi - lo, w, 4)
                    yield visualize_raw_uint8(units, wb_gains=gains)[2 * (a - lo) : 2 * (b - lo)]

        return write_png_rows(path, 2 * h, 2 * w, blocks())


def frame_context_of(model, rgb: np.ndarray, capture=None):
    """For a model with a 'context' input: its window function, from the whole frame's summary; None otherwise.

    The summary (blurred grid, colour statistics, `capture`'s recorded gains if given) is computed
    once on the whole frame; each tile's context is then made for its window
    (`global_stage.context.context_window`, equal to slicing `frame_context`), so the (H, W, C)
    context of a large frame is never held.
    """
    if "context" not in [t.name for t in model.inputs]:
        return None
    from revisp_tf.global_stage.context import context_window, frame_summary, with_capture

    summary = with_capture(frame_summary(rgb), capture)  # uint8 or float: read in row blocks, never converted whole
    return lambda y0, x0, h, w: context_window(summary, y0, x0, h, w)


def reconstruct_files(
    inputs,
    model,
    out_dir,
    fmt: str = "npy",
    sensor: SensorSpec | None = None,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 1,
    stitch: bool = False,
    jit_compile: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
) -> list[Path]:
    """Runs `model` on every input image (or on each stitched AIM 2022 frame) and writes the RAW files.

    With `progress`, frames done / total and, within a frame, tiles done / total are shown.
    `metadata` maps input paths to their `io.metadata.CaptureMetadata` (or None): a global-stage
    model applies its gains, and the DNG's AsShotNeutral comes from its white balance (a stitched
    frame: its first patch's).
    """
    check_choice("output format", fmt, OUTPUT_FORMATS)
    paths = expand_inputs(inputs)
    jobs = (
        [(scene, files) for scene, files in group_patch_files(paths).items()]
        if stitch
        else [(p.stem, [p]) for p in paths]
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runner = TiledInference(model, jit_compile=jit_compile)
    written = []
    for name, files in tqdm(jobs, desc="infer", unit="frame" if stitch else "image", disable=not progress):
        rgb = stitch_patches(files) if stitch else read_rgb_samples(files[0])
        check_even(rgb, files[0] if not stitch else f"scene {name}")
        capture = (metadata or {}).get(Path(files[0]))
        options = dict(batch_size=batch_size, context=frame_context_of(model, rgb, capture), progress=progress)
        bands = runner.bands(rgb, tile, overlap, **options)
        wb = None if capture is None else capture.wb
        written.append(write_frame(out / output_name(name, fmt), fmt, rgb, bands, sensor, wb=wb))
    return written


def output_name(name: str, fmt: str) -> str:
    """The file name of the RAW file of the input (or scene) `name` (a file's stem)."""
    return Path(name).with_suffix(f".{fmt}").name


def write_frame(target: Path, fmt: str, rgb: np.ndarray, bands, sensor: SensorSpec, *, wb=None) -> Path:
    """Writes the RAW file of frame `rgb` in format `fmt` from its packed (first row, rows) bands, top to bottom.

    `wb`: the capture's white balance, the DNG's AsShotNeutral (None: fitted to `rgb`).
    """
    shape = (rgb.shape[0] // 2, rgb.shape[1] // 2, 4)
    if fmt == "npy":
        return write_npy_bands(target, shape, bands, sensor)
    if fmt == "dng":
        return write_dng_bands(target, shape, bands, sensor, rgb=rgb, wb_gains=wb)
    return write_png_bands(target, shape, bands)
