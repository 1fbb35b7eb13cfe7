"""The per-frame side of on-device inference, in NumPy and OpenCV only: the frame context.

What a phone app computes around the .tflite (mobile/README.md), written without TensorFlow so
that it runs beside LiteRT anywhere (x86, ARM64): `frame_summary` and `context_window` are the
NumPy forms of revisp_tf.models.global_stage's (the context of a global-stage model, computed
once per frame, sliced per tile); tests/export/test_mobile_frame.py checks them against those.
The tiling is the library's own, `revisp_tf.tiling`, which needs NumPy only.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

CONTEXT_GRID = 16  # the frame averaged over a 16 x 16 grid of cells
CONTEXT_CHANNELS = 8  # position (y, x), blurred frame RGB, log mean linear R, G, B
GRID_BLUR_CELLS = 1.0  # Gaussian blur of the grid, in cells
GAMMA = 2.2  # linear = max(rgb, 1e-8) ** 2.2 for the frame's colour statistics
PAD_VALUE = 1.0  # what the authors' U-Net pads with; tiles beyond the frame are filled with it
_SUMMARY_ROWS = 256  # rows of the frame converted to float at a time


@dataclasses.dataclass(frozen=True)
class FrameSummary:
    """What a frame contributes to its pixels' context: grid (16, 16, 3), stats (3,), frame size (H, W)."""

    grid: np.ndarray
    stats: np.ndarray
    shape: tuple[int, int]


def _area_weights(size: int) -> np.ndarray:
    """(CONTEXT_GRID, size) weights averaging `size` pixels into cells by covered area."""
    edges = np.arange(CONTEXT_GRID + 1) * size / CONTEXT_GRID
    lo, hi = np.arange(size), np.arange(size) + 1.0
    overlap = np.clip(np.minimum(hi, edges[1:, None]) - np.maximum(lo, edges[:-1, None]), 0.0, None)
    return overlap / (size / CONTEXT_GRID)


def frame_summary(frame) -> FrameSummary:
    """The blurred 16 x 16 grid and the log mean linear colour of a whole frame (H, W, 3): float in [0, 1], uint8 or uint16."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame_summary: expected an (H, W, 3) frame, got {frame.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(frame.dtype, 1.0)
    h, w = frame.shape[:2]
    wy, wx = _area_weights(h), _area_weights(w)
    total, lin_sum = np.zeros((CONTEXT_GRID, CONTEXT_GRID, 3)), np.zeros(3)
    for y0 in range(0, h, _SUMMARY_ROWS):
        block = frame[y0 : y0 + _SUMMARY_ROWS].astype(np.float32) / np.float32(scale)
        total += np.einsum("gy,yxc,hx->ghc", wy[:, y0 : y0 + len(block)], block, wx, optimize=True)
        lin = np.power(np.maximum(block, np.float32(1e-8)), np.float32(GAMMA))
        lin_sum += lin.reshape(-1, 3).sum(0, dtype=np.float64)
    grid = cv2.GaussianBlur(total.astype(np.float32), (0, 0), GRID_BLUR_CELLS, borderType=cv2.BORDER_REPLICATE)
    stats = np.log(np.maximum(lin_sum / (h * w), 1e-4))
    return FrameSummary(grid.astype(np.float32), stats.astype(np.float32), (h, w))


def context_window(summary: FrameSummary, y0: int, x0: int, height: int, width: int) -> np.ndarray:
    """(height, width, 8) float32 context of the window at (y0, x0): pixel centres sample the grid bilinearly."""
    fh, fw = (np.float32(s) for s in summary.shape)
    ys = np.float32(y0) + np.arange(height, dtype=np.float32) + np.float32(0.5)  # pixel centres, frame coordinates
    xs = np.float32(x0) + np.arange(width, dtype=np.float32) + np.float32(0.5)

    def axis(coord, size_px):
        g = np.clip(coord / size_px * np.float32(CONTEXT_GRID) - np.float32(0.5), 0.0, CONTEXT_GRID - 1.0).astype(np.float32)
        lo = np.minimum(np.floor(g).astype(np.int64), CONTEXT_GRID - 2)
        return lo, g - lo.astype(np.float32)

    iy, ty = axis(ys, fh)
    ix, tx = axis(xs, fw)
    one = np.float32(1.0)
    rows = summary.grid[iy] * (one - ty)[:, None, None] + summary.grid[iy + 1] * ty[:, None, None]
    blurred = rows[:, ix] * (one - tx)[None, :, None] + rows[:, ix + 1] * tx[None, :, None]
    out = np.empty((height, width, CONTEXT_CHANNELS), np.float32)
    out[..., 0] = (np.float32(2.0) * ys / fh - one)[:, None]
    out[..., 1] = (np.float32(2.0) * xs / fw - one)[None, :]
    out[..., 2:5] = blurred
    out[..., 5:8] = summary.stats
    return out
