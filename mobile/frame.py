"""The per-frame side of on-device inference, in NumPy and OpenCV only: frame context and tiling.

What a phone app computes around the .tflite (mobile/README.md), written without TensorFlow so
that it runs beside LiteRT anywhere (x86, ARM64). Each function is the NumPy form of the library
function it names; tests/export/test_mobile_frame.py checks them against those.

- `frame_summary`, `context_window`: revisp_tf.models.global_stage (the context of a
  global-stage model, computed once per frame, sliced per tile).
- `tile_starts`, `axis_weights`: revisp_tf.inference (overlapping tiles on the max-pooling grid,
  raised-cosine blending whose weights sum to 1).
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


def tile_starts(size: int, tile: int, overlap: int, align: int) -> tuple[list[int], int]:
    """(starts, extent) of the tiles along one axis: starts on multiples of `align`, overlapping by >= `overlap`.

    The extent is the smallest multiple of `align`, at most `tile`, that needs no more tiles than
    `tile` would; an axis no longer than `tile` is one tile of extent `size`.
    """
    if size <= tile:
        return [0], size
    end = -(-size // align) * align

    def starts(extent: int) -> list[int]:
        last = end - extent
        step = (extent - overlap) // align * align
        return [min(i * step, last) for i in range(1 + -(-last // step))]

    fewest = len(starts(tile))
    smallest = -(-(overlap + align) // align) * align
    extent = next(e for e in range(smallest, tile + align, align) if len(starts(e)) <= fewest)
    return starts(extent), extent


def _ramp(distance: np.ndarray, overlap: int, margin: int) -> np.ndarray:
    width = overlap - 2 * margin
    if width == 0:
        return (distance >= margin).astype(np.float64)
    u = np.clip((distance - margin + 0.5) / width, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def axis_weights(starts, extent: int, margin: int) -> list[np.ndarray]:
    """Blend weights (packed resolution) of each tile along one axis; zero for `margin` px at inner edges, sum 1."""
    n, half = len(starts), extent // 2
    p = [s // 2 for s in starts]
    d = np.arange(half)
    windows = []
    for i in range(n):
        w = np.ones(half)
        if i > 0:
            w *= _ramp(d, p[i - 1] + half - p[i], margin // 2)
        if i < n - 1:
            w *= _ramp(half - 1 - d, p[i] + half - p[i + 1], margin // 2)
        windows.append(w)
    total = np.zeros(p[-1] + half)
    for pi, w in zip(p, windows):
        total[pi : pi + half] += w
    return [(w / total[pi : pi + half]).astype(np.float32) for pi, w in zip(p, windows)]


def check_tiling(tile: int, overlap: int, margin: int, align: int) -> None:
    """ValueError unless the tiling is valid for a model whose U-Nets pad to multiples of `align`."""
    if align < 2 or align % 2:
        raise ValueError(f"align={align}: expected an even number (2**depth of the U-Net, 16 for depth 4)")
    if tile <= 0 or tile % align:
        raise ValueError(f"tile={tile}: expected a positive multiple of align={align}")
    if overlap < 0 or overlap % 2 or overlap > tile - align:
        raise ValueError(f"overlap={overlap}: expected an even number in [0, {tile - align}] for tile={tile}")
    if margin < 0 or margin % 2 or 2 * margin > overlap:
        raise ValueError(f"margin={margin}: expected an even number in [0, overlap/2 = {overlap // 2}]")


def blended(weights: np.ndarray, inside: int) -> slice:
    """The packed rows (or columns) of a tile that reach the output: weight > 0 and inside the frame."""
    used = np.flatnonzero(weights[:inside] > 0)
    return slice(int(used[0]), int(used[-1]) + 1)
