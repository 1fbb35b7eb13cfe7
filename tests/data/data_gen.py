"""Test-side references and dataset writers: OpenCV and NumPy only, independent of the code under test."""

from pathlib import Path

import cv2
import numpy as np

from revisp_tf.isp.sensor import SensorSpec

# Stored RAW = 16-bit RGB samples, so model-unit RAW equals the RGB read from a 16-bit PNG, exactly.
TEST16 = SensorSpec("test16", "RGGB", black_level=0, white_level=65535, normaliser=65535)
COLOR_TILES = {"RGGB": [[0, 1], [1, 2]], "GRBG": [[1, 0], [2, 1]]}  # colour index (R=0, G=1, B=2) per 2x2 tile site


def np_pack(plane: np.ndarray) -> np.ndarray:
    """(H, W) mosaic -> (H/2, W/2, 4), channels by tile position (0,0), (0,1), (1,0), (1,1)."""
    h, w = plane.shape
    return plane.reshape(h // 2, 2, w // 2, 2).transpose(0, 2, 1, 3).reshape(h // 2, w // 2, 4)


def np_unpack(packed: np.ndarray) -> np.ndarray:
    """Inverse of np_pack."""
    h, w, _ = packed.shape
    return packed.reshape(h, w, 2, 2).transpose(0, 2, 1, 3).reshape(2 * h, 2 * w)


def np_mosaic(rgb: np.ndarray, cfa: str = "RGGB") -> np.ndarray:
    """Packed mosaic of a full-resolution (H, W, 3) image: each pixel keeps the colour its CFA site sees."""
    h, w, _ = rgb.shape
    colors = np.tile(np.array(COLOR_TILES[cfa]), (h // 2, w // 2))
    return np_pack(np.take_along_axis(rgb, colors[..., None], axis=-1)[..., 0])


def write_rgb16(path: Path, rgb16: np.ndarray) -> None:
    assert cv2.imwrite(str(path), rgb16[..., ::-1])


def read_rgb_ref(path: Path) -> np.ndarray:
    """Test-side reader: OpenCV decode, float32 RGB in [0, 1]."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img[..., ::-1].astype(np.float32) / np.float32(np.iinfo(img.dtype).max)
