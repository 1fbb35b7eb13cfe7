"""Image and RAW-array files: strict readers, and writers that go through `atomic_write`.

Reading policy of `read_rgb` (JPEG and PNG, recognised by their content, not their name):
- 8-bit RGB: used as is, scaled by 1/255. 16-bit PNG: scaled by 1/65535.
- Greyscale: replicated to three channels, with a logged warning.
- With an alpha channel: accepted only when alpha is fully opaque everywhere (then dropped);
  any transparent pixel is refused, since there is no right colour to composite onto.
- EXIF orientation is ignored: pixels are returned as stored, which is how they align with the
  sensor mosaic they were rendered from.
- Missing, empty, truncated or corrupt files and non-images raise one `ImageReadError` naming
  the file and what was expected. A JPEG counts as truncated when no end-of-image marker
  follows its first scan (OpenCV's file reader silently decodes such files partially), and as
  corrupt when libjpeg warns about its data ("Corrupt JPEG data: ...", which OpenCV only
  prints to stderr and then returns the damaged pixels).
- Size limit: an image whose header declares more than `max_pixels()` pixels (default
  `DEFAULT_MAX_PIXELS`, 64 MP, e.g. 8000x8000; `set_max_pixels` or `revisp-tf
  --max-megapixels` raises it) is refused before it is decoded, so a bogus or huge header
  never allocates gigabytes.

Every writer here goes through `revisp_tf.io.atomic.atomic_write`, so a failure never leaves a
half-written file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from absl import logging

from revisp_tf.data.layout import RGB_SUFFIXES
from revisp_tf.io.atomic import atomic_write
from revisp_tf.io.stderr import native_stderr
from revisp_tf.checks import check_unit_range

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOS, _JPEG_EOI = 0xDA, b"\xff\xd9"
# Start-of-frame markers (they carry the image size): C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# libjpeg's warnings about damaged image data (jerror.h JWRN_*); OpenCV prints them and carries on.
_LIBJPEG_CORRUPT = ("Corrupt JPEG data", "Premature end of JPEG file")
RAW_DTYPES = ("uint16", "float16", "float32", "float64")
RGB_EXPECTED = "a JPEG or PNG image"
DEFAULT_MAX_PIXELS = 64_000_000
_limits = {"max_pixels": DEFAULT_MAX_PIXELS}


class ImageReadError(ValueError):
    """A file that cannot be read as the image or array the caller expected."""


def max_pixels() -> int:
    """The largest image (width x height) the readers decode."""
    return _limits["max_pixels"]


def set_max_pixels(pixels: int) -> None:
    """Raises (or lowers) the image-size limit of the readers."""
    if int(pixels) != pixels or pixels < 1:
        raise ValueError(f"max pixels: expected a positive whole number, got {pixels}")
    _limits["max_pixels"] = int(pixels)


def read_file_bytes(path, expected: str, opener=None) -> bytes:
    """File contents, or ImageReadError for a missing, unreadable or empty file.

    `opener` (path -> binary file object, e.g. Beam's `FileSystems.open`) reads other file systems
    (gs://, s3://); without it `path` is a local file.
    """
    try:
        if opener is None:
            data = Path(path).read_bytes()
        else:
            with opener(path) as f:
                data = f.read()
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e}); expected {expected}") from None
    if not data:
        raise ImageReadError(f"{path}: file is empty; expected {expected}")
    return data


def _jpeg_header(data: bytes) -> tuple[tuple[int, int] | None, bool]:
    """((height, width) of the first frame header or None, whether an end-of-image marker follows the first scan).

    Walks the header segments (which may hold thumbnails, so a bare search for markers would not do).
    """
    size, i = None, 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return size, False
        if data[i + 1] == 0xFF:  # fill byte before a marker
            i += 1
            continue
        seg_end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] in _JPEG_SOF and size is None and i + 9 <= len(data):
            size = (int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big"))
        if data[i + 1] == _JPEG_SOS:
            # Inside entropy-coded data every 0xFF is stuffed or a marker, so FFD9 is the real EOI.
            return size, data.find(_JPEG_EOI, seg_end) != -1
        i = seg_end
    return size, False


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the PNG's IHDR chunk, which must come first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def _check_size(path: Path, size: tuple[int, int] | None, kind: str) -> None:
    """Refuses a header without a usable size, or one above the pixel limit, before anything is decoded."""
    if size is None or min(size) < 1:
        raise ImageReadError(f"{path}: corrupt {kind} header (no image size); expected a JPEG or PNG image")
    h, w = size
    limit = max_pixels()
    if h * w > limit:
        raise ImageReadError(
            f"{path}: {kind} is {w}x{h} px ({h * w / 1e6:g} MP), above the limit of {limit / 1e6:g} MP"
            " (revisp-tf --max-megapixels raises it)"
        )


def _decode(path: Path, data: bytes, jpeg: bool) -> np.ndarray | None:
    """OpenCV's decode; ImageReadError for the corrupt data libjpeg only warns about, or an OpenCV error."""
    buf = np.frombuffer(data, np.uint8)
    try:
        if not jpeg:
            return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        with native_stderr(_LIBJPEG_CORRUPT) as messages:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1]
        raise ImageReadError(f"{path}: OpenCV cannot decode it ({reason}); expected a JPEG or PNG image") from None
    corrupt = [m for m in messages if m.startswith(_LIBJPEG_CORRUPT)]
    if corrupt:
        raise ImageReadError(f"{path}: corrupt JPEG data (libjpeg: {corrupt[0]})")
    return img


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
    return decode_rgb_samples(read_file_bytes(path, RGB_EXPECTED), path)


def decode_rgb_samples(data: bytes, path) -> np.ndarray:
    """`read_rgb_samples` of a file's contents (from `read_file_bytes`); `path` names the file in errors."""
    expected = RGB_EXPECTED
    jpeg = data.startswith(_JPEG_MAGIC)
    if jpeg:
        size, complete = _jpeg_header(data)
        if not complete:
            raise ImageReadError(f"{path}: JPEG is truncated (no end-of-image marker after the image data)")
        _check_size(path, size, "JPEG")
    elif data.startswith(_PNG_MAGIC):
        _check_size(path, _png_size(data), "PNG")
    else:
        raise ImageReadError(f"{path}: not a JPEG or PNG file (starts with {data[:8]!r}); expected {expected}")
    img = _decode(path, data, jpeg)
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


def check_rgb_files(paths) -> None:
    """Reads every image once, before any work on them: ImageReadError naming the first one that is bad.

    Beyond `read_rgb_samples`' policy, height and width must be even (whole 2x2 bayer tiles).
    """
    for path in paths:
        h, w = read_rgb_samples(path).shape[:2]
        if h % 2 or w % 2:
            raise ImageReadError(f"{path}: {w}x{h} px; the bayer output needs an even width and height (crop one row/column)")


def write_rgb(path, rgb, *, jpeg_quality: int = 95) -> Path:
    """Writes (H, W, 3) RGB (float in [0, 1], or uint8) as an 8-bit PNG or JPEG, chosen by the extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RGB_SUFFIXES:
        raise ValueError(f"{path}: expected a file name ending in {', '.join(RGB_SUFFIXES)}")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb for {path}: expected shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        if rgb.dtype.kind != "f":
            raise ValueError(f"rgb for {path}: expected a float array with values in [0, 1], got dtype {rgb.dtype}")
        check_unit_range(rgb, f"rgb for {path}")
        rgb = np.round(rgb.astype(np.float32) * np.float32(255.0)).astype(np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if suffix != ".png" else []
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image as {suffix}")
    with atomic_write(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
    return path


def _png_chunk(f, kind: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))


def write_png_rows(path, height: int, width: int, blocks, *, level: int = 3) -> Path:
    """Writes an 8-bit RGB PNG from uint8 (n, width, 3) row blocks given top to bottom, encoding each as it comes.

    Rows use PNG filter 1 (Sub) and one zlib stream at `level`; the file is written to a temporary
    name and renamed, so memory holds one block and the compressor's window, whatever the size.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: expected a file name ending in .png")
    if not (0 < height < 2**31 and 0 < width < 2**31):
        raise ValueError(f"{path}: a PNG of {width}x{height} px cannot be written")
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        f.write(_PNG_MAGIC)
        _png_chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))  # 8-bit RGB, no interlace
        z = zlib.compressobj(level)
        written = 0
        for block in blocks:
            block = np.asarray(block)
            if block.dtype != np.uint8 or block.ndim != 3 or block.shape[1:] != (width, 3):
                raise ValueError(f"{path}: expected uint8 row blocks (n, {width}, 3), got {block.shape} {block.dtype}")
            rows = block.reshape(len(block), -1)
            sub = rows.copy()
            sub[:, 3:] -= rows[:, :-3]  # Sub filter: each byte minus the byte one pixel left (uint8 wraps mod 256)
            filtered = np.concatenate([np.ones((len(rows), 1), np.uint8), sub], axis=1)
            if data := z.compress(filtered.tobytes()):
                _png_chunk(f, b"IDAT", data)
            written += len(block)
        if written != height:
            raise RuntimeError(f"{path}: {written} of {height} rows were produced")
        _png_chunk(f, b"IDAT", z.flush())
        _png_chunk(f, b"IEND", b"")
    return path


def read_raw_npy(path, expected_shape=None) -> np.ndarray:
    """Reads a packed bayer .npy: (h, w, 4), uint16 or float, finite; None in `expected_shape` matches any size."""
    path = Path(path)
    expected = "a .npy file holding a packed bayer array of shape (h, w, 4), dtype uint16 or float"
    data = read_file_bytes(path, expected)
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
