"""Overlapping tiles of a frame and their blend weights, in NumPy only.

Shared by `revisp_tf.infer.tiled` (Keras) and `mobile/run_litert.py` (LiteRT beside NumPy, on x86
and ARM64), so that both tile a frame the same way. Tiles start on multiples of the model's
alignment (2**depth, its max-pooling grid), overlap by at least `overlap` px and are blended with
raised-cosine ramps whose weights sum to 1; `margin` px at each inner edge get no weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Defaults for the depth-4 U-Net: tiles of at most 512 px overlapping by 64 px, starting on multiples of
# 2**4 = 16 (its max-pooling grid); beyond the frame a tile is filled with the U-Net's own pad value.
DEFAULT_TILE, DEFAULT_OVERLAP, DEFAULT_ALIGN = 512, 64, 16
PAD_VALUE = 1.0


def check_tiling(tile: int, overlap: int, margin: int, align: int) -> None:
    """ValueError unless the tiling is valid for a model whose U-Nets pad to multiples of `align`."""
    if align < 2 or align % 2:
        raise ValueError(f"align={align}: expected an even number (2**depth of the U-Net, 16 for depth 4)")
    if tile <= 0 or tile % align:
        raise ValueError(f"tile={tile}: expected a positive multiple of {align} (the model's pooling alignment)")
    if overlap < 0 or overlap % 2 or overlap > tile - align:
        raise ValueError(f"overlap={overlap}: expected an even number in [0, {tile - align}] for tile={tile}")
    if margin < 0 or margin % 2 or 2 * margin > overlap:
        raise ValueError(f"margin={margin}: expected an even number in [0, overlap/2 = {overlap // 2}]")


def tile_starts(size: int, tile: int, overlap: int, align: int) -> tuple[list[int], int]:
    """(starts, extent) of the tiles along one axis of `size` px.

    Starts are multiples of `align`, consecutive tiles overlap by at least `overlap`, the last
    tile ends at `size` rounded up to `align`. The extent is the smallest multiple of `align`, at
    most `tile`, that needs no more tiles than `tile` itself would (a 3024 px axis at tile 512,
    overlap 32, align 16 takes 7 tiles of 464 px, not 7 of 512). An axis no longer than `tile` is
    one tile of extent `size`.
    """
    if size <= tile:
        return [0], size
    end = -(-size // align) * align

    def starts(extent: int) -> list[int]:
        last = end - extent
        step = (extent - overlap) // align * align
        return [min(i * step, last) for i in range(1 + -(-last // step))]

    fewest = len(starts(tile))
    smallest = -(-(overlap + align) // align) * align  # the first extent whose step is positive
    extent = next(e for e in range(smallest, tile + align, align) if len(starts(e)) <= fewest)
    return starts(extent), extent


def _ramp(distance: np.ndarray, overlap: int, margin: int) -> np.ndarray:
    """Weight of a tile at `distance` packed px from its inner edge, for an edge overlapping by `overlap`."""
    width = overlap - 2 * margin
    if width == 0:
        return (distance >= margin).astype(np.float64)
    u = np.clip((distance - margin + 0.5) / width, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)  # sin^2: complementary to the neighbour's ramp


def axis_weights(starts: Sequence[int], extent: int, margin: int) -> list[np.ndarray]:
    """Blend weights (packed resolution) of each tile along one axis; they sum to 1 at every position."""
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


def blended(weights: np.ndarray, inside: int) -> slice:
    """The packed rows (or columns) of a tile that reach the output: weight > 0 and inside the frame."""
    used = np.flatnonzero(weights[:inside] > 0)
    return slice(int(used[0]), int(used[-1]) + 1)
