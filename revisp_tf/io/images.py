"""Image and RAW-array files: strict readers, atomic writers.

Reading policy of `read_rgb` (JPEG and PNG, recognised by their content, not their name):
- 8-bit RGB: used as is, scaled by 1/255. 16-bit PNG: scaled by 1/65535.
- Greyscale: replicated to three channels, with a logged warning.
- With an alpha channel: accepted only when alpha is fully opaque everywhere (then dropped);
  any transparent pixel is refused, since there is no right colour to composite onto.
- EXIF orientation is ignored: pixels are returned as stored, which is how they align with the
  sensor mosaic they were rendered from.
- Missing, empty, truncated or corrupt files and non-images raise one `ImageReadError` naming
  the file and what was expected. A JPEG counts as truncated when no end-of-image marker
  follows its first scan (OpenCV's file reader silently decodes such files partially).

Every writer here goes through `atomic_write`, so a failure never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from absl import logging

from revisp_tf.isp._checks import as_float_tensor

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOS, _JPEG_EOI = 0xDA, b"\xff\xd9"
_RGB_SUFFIXES = (".png", ".jpg", ".jpeg")
RAW_DTYPES = ("uint16", "float16", "float32", "float64")


class ImageReadError(ValueError):
    """A file that cannot be read as the image or array the caller expected."""


@contextlib.contextmanager
def atomic_write(path) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same extension); renames to `path` on success, deletes it on failure."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        if not tmp.is_file():
            raise RuntimeError(f"writing {path}: the writer did not create {tmp.name}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_bytes(path: Path, expected: str) -> bytes:
    """File contents, or ImageReadError for a missing, unreadable or empty file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e}); expected {expected}") from None
    if not data:
        raise ImageReadError(f"{path}: file is empty; expected {expected}")
    return data


def _jpeg_is_complete(data: bytes) -> bool:
    """True if an end-of-image marker follows the first scan (skips header segments, which may hold thumbnails)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return False
        if data[i + 1] == 0xFF:  # fill byte before a marker
            i += 1
            continue
        seg_end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] == _JPEG_SOS:
            # Inside entropy-coded data every 0xFF is stuffed or a marker, so FFD9 is the real EOI.
            return data.find(_JPEG_EOI, seg_end) != -1
        i = seg_end
    return False


def _drop_opaque_alpha(img: np.ndarray, path: Path) -> np.ndarray:
    """Colour channels of an image with alpha last, or ImageReadError if any pixel is transparent."""
    alpha = img[..., -1]
    opaque = np.iinfo(img.dtype).max
    if np.any(alpha != opaque):
        share = float(np.mean(alpha != opaque))
        raise ImageReadError(
            f"{path}: has transparent pixels ({share:.1%} with alpha < {opaque}); expected an opaque RGB image"
        )
    return img[..., :-1]


def read_rgb(path) -> np.ndarray:
    """Reads a JPEG or PNG as float32 RGB (H, W, 3) in [0, 1], following the module's policy."""
    img = read_rgb_samples(path)
    return img.astype(np.float32) / np.float32(np.iinfo(img.dtype).max)


def read_rgb_samples(path) -> np.ndarray:
    """Reads a JPEG or PNG as its stored uint8 or uint16 RGB samples (H, W, 3), following the module's policy.

    A quarter of `read_rgb`'s memory for 8-bit images: what full-frame inference keeps.
    """
    path = Path(path)
    expected = "a JPEG or PNG image"
    data = _read_bytes(path, expected)
    if data.startswith(_JPEG_MAGIC):
        if not _jpeg_is_complete(data):
            raise ImageReadError(f"{path}: JPEG is truncated (no end-of-image marker after the image data)")
    elif not data.startswith(_PNG_MAGIC):
        raise ImageReadError(f"{path}: not a JPEG or PNG file (starts with {data[:8]!r}); expected {expected}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{path}: corrupt or truncated image data; expected {expected}")
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{path}: unsupported sample type {img.dtype}; expected 8-bit or 16-bit samples")
    if img.ndim == 2:
        img = img[..., np.newaxis]
    if img.shape[-1] in (2, 4):
        img = _drop_opaque_alpha(img, path)
    if img.shape[-1] == 1:
        logging.warning("%s: greyscale image, replicating it to 3 channels", path)
        img = np.repeat(img, 3, axis=-1)
    else:
        img = np.ascontiguousarray(img)  # a copy only after dropping alpha
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place: no second full-size copy
    return img


def write_rgb(path, rgb, *, jpeg_quality: int = 95) -> Path:
    """Writes (H, W, 3) RGB (float in [0, 1], or uint8) as an 8-bit PNG or JPEG, chosen by the extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _RGB_SUFFIXES:
        raise ValueError(f"{path}: expected a file name ending in {', '.join(_RGB_SUFFIXES)}")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb for {path}: expected shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        t, _ = as_float_tensor(rgb, f"rgb for {path}")
        rgb = np.round(t[0].numpy() * 255.0).astype(np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if suffix != ".png" else []
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image as {suffix}")
    with atomic_write(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
    return path


def read_raw_npy(path, expected_shape=None) -> np.ndarray:
    """Reads a packed bayer .npy: (h, w, 4), uint16 or float, finite; None in `expected_shape` matches any size."""
    path = Path(path)
    expected = "a .npy file holding a packed bayer array of shape (h, w, 4), dtype uint16 or float"
    data = _read_bytes(path, expected)
    if not data.startswith(b"\x93NUMPY"):
        raise ImageReadError(f"{path}: not a NumPy .npy file; expected {expected}")
    try:
        with path.open("rb") as f:
            arr = np.load(f, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        what = "holds pickled Python objects" if "allow_pickle" in str(e) else f"corrupt or truncated .npy ({e})"
        raise ImageReadError(f"{path}: {what}; expected {expected}") from None
    if arr.dtype.name not in RAW_DTYPES:
        raise ImageReadError(f"{path}: dtype {arr.dtype}; expected one of {', '.join(RAW_DTYPES)}")
    if arr.ndim != 3 or arr.shape[-1] != 4:
        raise ImageReadError(f"{path}: shape {arr.shape}; expected a packed bayer array (h, w, 4)")
    if expected_shape is not None:
        expected_shape = tuple(expected_shape)
        if len(expected_shape) != 3 or any(e is not None and e != a for e, a in zip(expected_shape, arr.shape)):
            raise ImageReadError(f"{path}: shape {arr.shape}; expected {expected_shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ImageReadError(f"{path}: {int(np.sum(~np.isfinite(arr)))} non-finite values; expected finite values")
    return arr


def write_npy(path, arr) -> Path:
    """Writes an array to a .npy file (no pickling)."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"{path}: expected a file name ending in .npy")
    with atomic_write(path) as tmp, tmp.open("wb") as f:
        np.save(f, np.asarray(arr), allow_pickle=False)
    return path
