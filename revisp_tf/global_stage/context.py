"""The frame context of a global-stage model, in NumPy and OpenCV only (no TensorFlow).

Each pixel's context is computed once per *frame*: its position in the frame, a heavily blurred
view of the whole frame (local tone mapping and vignetting act at that scale, beyond what a crop
sees) and the frame's colour statistics. A tile takes its slice (`context_window`), so tiles give
the frame's own output. The library and the LiteRT runner (mobile/, beside LiteRT on a phone's
CPU) share this module; `global_stage.layers.context_window_tf` is its TF form for tf.data.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

CONTEXT_GRID = 16  # the blurred view: the frame averaged over a 16 x 16 grid of cells (~100 px)
GRID_BLUR_CELLS = 1.0  # then Gaussian-blurred by this many cells
# Context channels, in order: position (y, x in [-1, 1]), blurred frame RGB, log mean linear R, G, B.
CONTEXT_CHANNELS = 8
STATS_GAMMA = 2.2  # linear = max(rgb, 1e-8) ** 2.2 for the statistics: UPI's gamma (isp.unprocess.GAMMA)
_SUMMARY_ROWS = 256  # rows of the frame converted to float at a time: memory does not grow with the frame


@dataclasses.dataclass(frozen=True)
class FrameContext:
    """What a frame contributes to its pixels' context: grid (g, g, 3), stats (3,), frame size (H, W)."""

    grid: np.ndarray
    stats: np.ndarray
    shape: tuple[int, int]


def _area_weights(size: int) -> np.ndarray:
    """(CONTEXT_GRID, size) weights averaging `size` pixels into CONTEXT_GRID cells by covered area (INTER_AREA)."""
    edges = np.arange(CONTEXT_GRID + 1) * size / CONTEXT_GRID
    lo, hi = np.arange(size), np.arange(size) + 1.0
    overlap = np.clip(np.minimum(hi, edges[1:, None]) - np.maximum(lo, edges[:-1, None]), 0.0, None)
    return overlap / (size / CONTEXT_GRID)


def frame_summary(frame_rgb, valid=None) -> FrameContext:
    """The blurred grid and colour statistics of a whole frame (H, W, 3): float in [0, 1], or uint8/uint16.

    `valid` (H, W) bool marks the pixels known (a frame stitched from some of its patches);
    grid cells with none take the mean of the known pixels. The frame is read in row blocks,
    so a 100 MP frame costs a few tens of MB beyond itself.
    """
    frame = np.asarray(frame_rgb)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame_summary: expected an (H, W, 3) frame, got {frame.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(frame.dtype, 1.0)
    h, w = frame.shape[:2]
    wy, wx = _area_weights(h), _area_weights(w)
    total, weight = np.zeros((CONTEXT_GRID, CONTEXT_GRID, 3)), np.zeros((CONTEXT_GRID, CONTEXT_GRID))
    lin_sum, count = np.zeros(3), 0.0
    for y0 in range(0, h, _SUMMARY_ROWS):
        block = frame[y0 : y0 + _SUMMARY_ROWS].astype(np.float32) / np.float32(scale)
        known = np.ones(block.shape[:2]) if valid is None else np.asarray(valid[y0 : y0 + _SUMMARY_ROWS], np.float64)
        rows = wy[:, y0 : y0 + len(block)]
        total += np.einsum("gy,yxc,hx->ghc", rows, block * known[..., None], wx, optimize=True)
        weight += rows @ known @ wx.T
        lin = np.power(np.maximum(block, np.float32(1e-8)), np.float32(STATS_GAMMA))
        lin_sum += (lin * known[..., None]).reshape(-1, 3).sum(0)
        count += known.sum()
    if count == 0:
        raise ValueError("frame_summary: the frame has no known pixels")
    mean_lin = lin_sum / count
    mean = np.einsum("ghc->c", total) / max(weight.sum(), 1e-12)
    grid = np.where(weight[..., None] > 1e-9, total / np.maximum(weight[..., None], 1e-12), mean)
    grid = cv2.GaussianBlur(grid.astype(np.float32), (0, 0), GRID_BLUR_CELLS, borderType=cv2.BORDER_REPLICATE)
    stats = np.log(np.maximum(mean_lin, 1e-4))
    return FrameContext(grid.astype(np.float32), stats.astype(np.float32), (h, w))


def context_window(summary: FrameContext, y0: int, x0: int, height: int, width: int) -> np.ndarray:
    """(height, width, CONTEXT_CHANNELS) float32 context of the window at (y0, x0): pixel centres sample the grid bilinearly."""
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
    out = np.empty((height, width, CONTEXT_CHANNELS), np.float32)
    out[..., 0] = (np.float32(2.0) * ys / fh - one)[:, None]
    out[..., 1] = (np.float32(2.0) * xs / fw - one)[None, :]
    out[..., 2:5] = rows[:, ix] * (one - tx)[None, :, None] + rows[:, ix + 1] * tx[None, :, None]
    out[..., 5:8] = summary.stats
    return out


def frame_context(frame_rgb) -> np.ndarray:
    """(H, W, CONTEXT_CHANNELS) context of every pixel of a whole frame."""
    s = frame_summary(frame_rgb)
    return context_window(s, 0, 0, *s.shape)
