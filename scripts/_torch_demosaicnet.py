"""PyTorch side of the Demosaic Net port: the reference model and real RAW crops (scripts only, needs torch).

Shared by `convert_demosaicnet_weights.py` and `make_demosaicnet_fixture.py`. The reference
path uses demosaicnet's own `bayer()` to zero-fill the mosaic, so it shares nothing with the
Keras port but the project's CFA convention (`revisp_tf.isp.bayer`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import demosaicnet
import numpy as np
import rawpy
import torch

from revisp_tf.realdata import realdata_dir
from revisp_tf.isp import bayer

REALDATA = realdata_dir()
NET_CFA = "GRBG"
BORDER_TILES = 16  # mirrored 2x2 tiles per side, as the Keras port pads
LOST_PER_SIDE = 31  # pad=False: 15 packed 3x3 convs (30 px) + one full-resolution 3x3 conv

# Levels from ../shared/realdata/README.md.
CANON_550D = dict(file="raw/canon_550d/colorchart.dng", black=2056, white=15000)
NOKIA_N900 = dict(file="raw/nokia_n900/bayer_small.png", cfa="GRBG", black=25, white=1023)


def torch_model() -> torch.nn.Module:
    """The released Bayer model with its shipped weights and the default `pad=False`."""
    return demosaicnet.BayerDemosaick(pretrained=True, pad=False).eval()


def _normalise(raw: np.ndarray, black: float, white: float) -> np.ndarray:
    """Stored sensor values -> float32 in [0, 1] (black removed, saturation at 1)."""
    return np.clip((raw.astype(np.float32) - black) / (white - black), 0.0, 1.0)


def _rggb_packed(mosaic: np.ndarray, cfa: str) -> np.ndarray:
    """(H, W) normalised mosaic of pattern `cfa` -> packed RGGB (h, w, 4) float32."""
    return np.asarray(bayer.convert_pattern(bayer.pack(mosaic[..., None]), cfa, bayer.CANONICAL_CFA))


def canon_crop(top: int, left: int, size: int, realdata: Path = REALDATA) -> np.ndarray:
    """Packed RGGB crop of the Canon 550D DNG; `top`, `left` in mosaic pixels (even), `size` the mosaic side."""
    path = Path(realdata) / CANON_550D["file"]
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (needs ../shared/realdata next to the repository)")
    with rawpy.imread(str(path)) as raw:
        desc = raw.color_desc.decode()
        cfa = "".join(desc[raw.raw_pattern[r, c]] for r, c in bayer.TILE_POSITIONS)
        crop = raw.raw_image_visible[top : top + size, left : left + size].copy()
    if top % 2 or left % 2:
        raise ValueError(f"canon_crop: offsets must be even to keep the CFA phase, got {top}, {left}")
    return _rggb_packed(_normalise(crop, CANON_550D["black"], CANON_550D["white"]), cfa)


def n900_crop(top: int, left: int, height: int, width: int, realdata: Path = REALDATA) -> np.ndarray:
    """Packed RGGB crop of the Nokia N900 GRBG PNG (the GRBG->RGGB shift drops one column per side)."""
    path = Path(realdata) / NOKIA_N900["file"]
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel 16-bit PNG mosaic")
    if top % 2 or left % 2:
        raise ValueError(f"n900_crop: offsets must be even to keep the CFA phase, got {top}, {left}")
    crop = raw[top : top + height, left : left + width]
    return _rggb_packed(_normalise(crop, NOKIA_N900["black"], NOKIA_N900["white"]), NOKIA_N900["cfa"])


def _run(model: torch.nn.Module, grbg_mosaic: np.ndarray) -> np.ndarray:
    """(H, W, 1) GRBG mosaic -> PyTorch output (H', W', 3); zero-filling by demosaicnet's own `bayer()`."""
    planes = np.repeat(np.transpose(grbg_mosaic, (2, 0, 1)), 3, axis=0)
    zero_filled = demosaicnet.bayer(planes)
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(zero_filled))[None])
    return np.transpose(out[0].numpy(), (1, 2, 0)).astype(np.float32)


def _grbg(packed_rggb: np.ndarray) -> np.ndarray:
    """Packed RGGB -> full-resolution GRBG mosaic (H, W - 2, 1): drops one column per side."""
    return np.asarray(bayer.crop_to_pattern(bayer.unpack(packed_rggb), bayer.CANONICAL_CFA, NET_CFA))


def reference_full(model: torch.nn.Module, packed_rggb: np.ndarray) -> np.ndarray:
    """PyTorch `pad=False` on the tile-mirrored mosaic, cropped to the input's pixels: (H, W, 3)."""
    padded = np.pad(packed_rggb, ((BORDER_TILES, BORDER_TILES), (BORDER_TILES, BORDER_TILES), (0, 0)), mode="reflect")
    out = _run(model, _grbg(padded))
    # Output pixel (i, j) sits over padded-GRBG pixel (i + 31, j + 31) = input pixel (i + 31 - 32, j + 31 + 1 - 32).
    row0 = 2 * BORDER_TILES - LOST_PER_SIDE
    col0 = 2 * BORDER_TILES - LOST_PER_SIDE - 1
    h, w = 2 * packed_rggb.shape[0], 2 * packed_rggb.shape[1]
    assert out.shape[:2] == (h + 2 * row0, w + 2 * col0), out.shape
    return out[row0 : row0 + h, col0 : col0 + w]


def reference_valid(model: torch.nn.Module, packed_rggb: np.ndarray) -> np.ndarray:
    """PyTorch `pad=False` on the unpadded GRBG mosaic: input pixels [31 : H - 31, 32 : W - 32]."""
    return _run(model, _grbg(packed_rggb))


def valid_window(height: int, width: int) -> tuple[slice, slice]:
    """Where `reference_valid` lies in a full-size (height, width) output."""
    return slice(LOST_PER_SIDE, height - LOST_PER_SIDE), slice(LOST_PER_SIDE + 1, width - LOST_PER_SIDE - 1)
