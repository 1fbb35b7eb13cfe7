"""Finding and validating example files before any training starts.

Layouts (`layout=`):
- "aim22": AIM 2022 Reversed ISP, both tracks: one folder of `{scene}_{k}.jpg` (RGB, H x W)
  and `{scene}_{k}.npy` (packed RGGB RAW, (H/2, W/2, 4)); the scene is the name before `_k`.
- "folder": generic pairs, `ROOT/rgb/NAME.{jpg,jpeg,png}` and `ROOT/raw/NAME.{npy,png}` with
  the same relative NAME. A .npy RAW is packed (H/2, W/2, 4); a .png RAW is a 16-bit
  single-plane mosaic (H, W). NAME may contain sub-folders: the scene is the first
  sub-folder (keep the patches of one scene in one), or the file name when there is none.
RAW files hold stored sensor values (uint16 or float); their CFA is the sensor's.
The demosaiced-RAW ground truth, when present, is `NAME.demosaic.npy` beside the RAW
(written by `prepare_gt`): float (H', W', 3) in [0, 1], where (H', W') is the RGB size after
cropping to the RGGB phase (equal to (H, W) for RGGB sensors).

Every bad file stops the scan with a `DataError` naming it and what was expected, unless
`skip_bad=True`: then each skipped file is logged with its reason and listed in
`ScanResult.skipped`. Nothing is skipped silently.
"""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from absl import logging

from revisp_tf.checks import check_choice
from revisp_tf.choices import LAYOUTS
from revisp_tf.data.layout import RGB_SUFFIXES, aim22_name
from revisp_tf.io.images import RAW_DTYPES, ImageReadError, read_raw_npy, read_rgb
from revisp_tf.isp.bayer import CANONICAL_CFA, cfa_shift
from revisp_tf.isp.sensor import SensorSpec

RAW_SUFFIXES = (".npy", ".png")
DEMOSAIC_SUFFIX = ".demosaic.npy"
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class DataError(ValueError):
    """A data file that is missing, unreadable, or not what the dataset layout promises."""


@dataclasses.dataclass(frozen=True)
class Example:
    """The files of one example: RGB, optional RAW and demosaiced RAW, its scene and RGB size (H, W)."""

    rgb: Path
    scene: str
    size: tuple[int, int] = (0, 0)
    raw: Path | None = None
    demosaiced: Path | None = None


@dataclasses.dataclass(frozen=True)
class BadFile:
    """A file left out by a scan with `skip_bad=True`, and why."""

    path: Path
    reason: str

    @staticmethod
    def from_error(path: Path, error: Exception) -> "BadFile":
        """The error's message without the leading `path: ` it starts with."""
        reason, prefix = str(error), f"{path}: "
        return BadFile(path, reason[len(prefix) :] if reason.startswith(prefix) else reason)


class ScanResult(list):
    """The valid examples (a plain list of `Example`), plus `skipped`: the `BadFile`s left out."""

    def __init__(self, examples=(), skipped=()):
        super().__init__(examples)
        self.skipped = list(skipped)


@dataclasses.dataclass(frozen=True)
class NpyLayout:
    """Where the array data of a .npy file starts, and its dtype (NumPy string, e.g. '<u2') and shape."""

    offset: int
    dtype: str
    shape: tuple[int, ...]


def demosaic_path(raw: Path) -> Path:
    """Where the demosaiced-RAW ground truth of a RAW file lives: `NAME.demosaic.npy` beside it."""
    return raw.with_name(raw.name[: -len(raw.suffix)] + DEMOSAIC_SUFFIX)


def rggb_size(hw: tuple[int, int], sensor: SensorSpec) -> tuple[int, int]:
    """Full-resolution size after cropping a `sensor.cfa` mosaic to the RGGB phase (bayer.crop_to_pattern)."""
    dy, dx = cfa_shift(sensor.cfa, CANONICAL_CFA)
    return hw[0] - 2 * dy, hw[1] - 2 * dx


def npy_layout(path: Path) -> NpyLayout:
    """Reads only the header of a .npy file; DataError unless it is a C-ordered array of a plain dtype."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in _NPY_HEADER_READERS:
                raise ValueError(f".npy format version {version} is not supported")
            shape, fortran, dtype = _NPY_HEADER_READERS[version](f)
            offset = f.tell()
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e})") from None
    if fortran or dtype.hasobject or dtype.byteorder == ">":
        raise DataError(f"{path}: Fortran-order, object or big-endian array; expected a C-ordered little-endian array")
    return NpyLayout(offset, dtype.str, tuple(shape))


def _check_rgb(path: Path) -> tuple[int, int]:
    """(H, W) of a readable RGB image with whole 2x2 CFA tiles."""
    h, w = read_rgb(path).shape[:2]
    if h % 2 or w % 2:
        raise DataError(f"{path}: RGB is {h}x{w}; expected even height and width (whole 2x2 CFA tiles)")
    return h, w


def _check_levels(path: Path, values: np.ndarray, sensor: SensorSpec) -> None:
    """Stored RAW values (finite: checked by the reader) must lie within [0, the sensor's max_stored]."""
    lo, hi = values.min(), values.max()
    if lo < 0 or hi > sensor.max_stored:
        raise DataError(
            f"{path}: RAW values span [{lo:g}, {hi:g}]; expected stored values within [0, {sensor.max_stored:g}]"
            f" (largest stored value of sensor {sensor.name!r})"
        )


def check_raw(path: Path, sensor: SensorSpec, rgb_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Stored values of a packed .npy (H/2, W/2, 4) or 16-bit .png mosaic (H, W), checked (RGB size, levels)."""
    if path.suffix == ".png":
        mosaic = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mosaic is None:
            raise DataError(f"{path}: unreadable PNG; expected a 16-bit single-plane RAW mosaic")
        if mosaic.dtype != np.uint16 or mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
            raise DataError(
                f"{path}: PNG of {mosaic.dtype} {mosaic.shape}; expected a 16-bit single-plane mosaic of even size"
            )
        if rgb_hw is not None and mosaic.shape != tuple(rgb_hw):
            raise DataError(f"{path}: mosaic shape {mosaic.shape}; expected {tuple(rgb_hw)}, the size of its RGB")
        _check_levels(path, mosaic, sensor)
        return mosaic
    layout = npy_layout(path)
    if np.dtype(layout.dtype).name not in RAW_DTYPES:
        raise DataError(f"{path}: dtype {np.dtype(layout.dtype)}; expected one of {', '.join(RAW_DTYPES)}")
    if rgb_hw is None:
        if len(layout.shape) != 3 or layout.shape[-1] != 4:
            raise DataError(f"{path}: shape {layout.shape}; expected a packed bayer array (H/2, W/2, 4)")
    elif layout.shape != (rgb_hw[0] // 2, rgb_hw[1] // 2, 4):
        want = (rgb_hw[0] // 2, rgb_hw[1] // 2, 4)
        rgb = f"{rgb_hw[0]}x{rgb_hw[1]}"
        raise DataError(f"{path}: shape {layout.shape}; expected {want} = (H/2, W/2, 4) for its {rgb} RGB")
    try:
        values = read_raw_npy(path)
    except ImageReadError as e:
        raise DataError(str(e)) from None
    _check_levels(path, values, sensor)
    return values


def _check_demosaiced(path: Path, hw: tuple[int, int]) -> None:
    """A float (H, W, 3) array in [0, 1]."""
    layout = npy_layout(path)
    want = (*hw, 3)
    if np.dtype(layout.dtype).kind != "f" or layout.shape != want:
        raise DataError(f"{path}: {np.dtype(layout.dtype)} {layout.shape}; expected a float array of shape {want}")
    v = np.load(path).astype(np.float32)  # NumPy's float16 reductions are ~10x slower
    if not np.all((v >= 0) & (v <= 1)):  # NaN fails both comparisons
        raise DataError(f"{path}: values outside [0, 1] or not finite; expected a demosaiced RAW in [0, 1]")


def _validate(example: Example, sensor: SensorSpec | None) -> Example | BadFile:
    """The example itself, or the BadFile that stops it (the first check that fails)."""
    path = example.rgb
    try:
        hw = _check_rgb(path)
        example = dataclasses.replace(example, size=hw)
        if example.raw is not None:
            path = example.raw
            check_raw(path, sensor, hw)
            gt = demosaic_path(path)
            if gt.is_file():
                path = gt
                _check_demosaiced(gt, rggb_size(hw, sensor))
                example = dataclasses.replace(example, demosaiced=gt)
    except (DataError, ImageReadError) as e:
        return BadFile.from_error(path, e)
    return example


def _natural_key(name: str):
    """Sort key that puts `10_2` before `10_10`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _files(root: Path, suffixes, recursive: bool) -> dict[str, Path]:
    """Visible files under root with one of `suffixes`, keyed by relative path without suffix."""
    paths = root.rglob("*") if recursive else root.iterdir()
    out = {}
    for p in paths:
        rel = p.relative_to(root)
        if p.is_file() and p.suffix.lower() in suffixes and not any(part.startswith(".") for part in rel.parts):
            if not p.name.endswith(DEMOSAIC_SUFFIX):
                out[rel.with_suffix("").as_posix()] = p
    return out


def _scene(name: str, layout: str) -> str | None:
    """Scene id of a relative name without suffix, or None if an aim22 name is not `{scene}_{k}`."""
    if layout == "aim22":
        key = aim22_name(name)
        return key[0] if key else None
    return name.split("/", 1)[0]


def _layout_files(root: Path, layout: str) -> tuple[dict[str, Path], dict[str, Path], str]:
    """(RGB files, RAW files, description of the layout), keyed by relative name without suffix."""
    check_choice("layout", layout, LAYOUTS)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory; expected a dataset folder ({layout} layout)")
    if layout == "aim22":
        what = "`{scene}_{k}.jpg` + `{scene}_{k}.npy` (AIM 2022 layout)"
        return _files(root, RGB_SUFFIXES, False), _files(root, (".npy",), False), what
    for sub in ("rgb", "raw"):
        if not (root / sub).is_dir():
            raise DataError(f"{root}: no {sub}/ folder; expected ROOT/rgb/NAME.jpg|png + ROOT/raw/NAME.npy|png")
    what = "rgb/NAME.jpg|png + raw/NAME.npy|png"
    return _files(root / "rgb", RGB_SUFFIXES, True), _files(root / "raw", RAW_SUFFIXES, True), what


def raw_files(root, layout: str = "aim22") -> list[Path]:
    """The RAW files of a dataset folder, in name order (demosaiced ground truth excluded)."""
    raws = _layout_files(Path(root), layout)[1]
    return [raws[name] for name in sorted(raws, key=_natural_key)]


def _pair(root: Path, layout: str) -> list[Example | BadFile]:
    """Matches RGB and RAW files by name; a file without its partner is a BadFile."""
    rgbs, raws, what = _layout_files(root, layout)
    out = []
    for name in sorted(rgbs.keys() | raws.keys(), key=_natural_key):
        rgb, raw, scene = rgbs.get(name), raws.get(name), _scene(name, layout)
        if rgb is None:
            out.append(BadFile(raw, f"RAW without its RGB partner; expected {what}"))
        elif raw is None:
            out.append(BadFile(rgb, f"RGB without its RAW partner; expected {what}"))
        elif scene is None:
            out.append(BadFile(rgb, f"name is not {{scene}}_{{k}}; expected {what}"))
        else:
            out.append(Example(rgb, scene, raw=raw))
    return out


def _finish(items: list, sensor: SensorSpec | None, skip_bad: bool, root: Path, what: str) -> ScanResult:
    """Validates in parallel (decoders release the GIL); stops at the first bad file unless skip_bad."""
    with ThreadPoolExecutor() as pool:
        checked = list(pool.map(lambda it: it if isinstance(it, BadFile) else _validate(it, sensor), items))
    bad = [c for c in checked if isinstance(c, BadFile)]
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
        raise DataError(f"{bad[0].path}: {bad[0].reason}{more}")
    for b in bad:
        logging.warning("skipping %s: %s", b.path, b.reason)
    good = [c for c in checked if isinstance(c, Example)]
    if bad:
        logging.warning("%s: skipped %d bad files, kept %d examples", root, len(bad), len(good))
    if not good:
        raise DataError(f"{root}: no valid examples; expected {what}")
    return ScanResult(good, bad)


def scan_pairs(root, layout: str = "aim22", sensor: SensorSpec | None = None, skip_bad: bool = False) -> ScanResult:
    """Finds and validates the (RGB, RAW[, demosaiced RAW]) examples under `root`; see the module docstring."""
    if not isinstance(sensor, SensorSpec):
        raise ValueError(f"sensor: expected a SensorSpec (revisp_tf.isp.sensor), got {sensor!r}")
    root = Path(root)
    return _finish(_pair(root, layout), sensor, skip_bad, root, f"RGB + RAW pairs in the {layout} layout")


def scan_rgb(root, skip_bad: bool = False) -> ScanResult:
    """Finds and validates RGB-only examples (every JPEG/PNG under `root`) for inference.

    The scene is the first sub-folder for nested files, else `{scene}` of a `{scene}_{k}` name, else the name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory; expected a folder of RGB images")
    names = _files(root, RGB_SUFFIXES, True)
    items = [
        Example(names[n], _scene(n, "folder" if "/" in n else "aim22") or n) for n in sorted(names, key=_natural_key)
    ]
    return _finish(items, None, skip_bad, root, "JPEG or PNG images")


def split_by_scene(examples, val_fraction: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, val): a seeded random `val_fraction` of the scenes goes to val; no scene is in both."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
    scenes = sorted({e.scene for e in examples}, key=_natural_key)
    n_val = int(round(val_fraction * len(scenes)))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= len(scenes):
        raise ValueError(f"cannot hold out {val_fraction:.0%} of {len(scenes)} scenes and keep a training scene")
    order = np.random.default_rng(seed).permutation(len(scenes))
    val_scenes = {scenes[i] for i in order[:n_val]}
    return [e for e in examples if e.scene not in val_scenes], [e for e in examples if e.scene in val_scenes]
