"""Full-resolution inference by overlapping tiles, and the AIM 2022 patch grid.

Tiling (`infer_tiled`):
- Tiles are `tile` x `tile` px and start at multiples of the model's alignment: the multiple its
  U-Nets pad to (2**depth, found from its `PadToMultiple` layers), never less than 2. Even starts
  keep the CFA phase; multiples of 2**depth put every tile on the same max-pooling grid, so two
  tiles compute the same values wherever both see enough context.
- A frame that is not a multiple of the alignment is extended at the bottom and right with the
  model's own pad constant (1.0 for the authors' U-Net); the extension is cropped off.
- Neighbouring tiles overlap by at least `overlap` px. Inside each overlap the first `margin` px
  from a tile's inner edge get weight 0 (context only: the zero padding of every convolution at
  the tile edge distorts them), then a raised-cosine ramp hands over to the neighbour. Weights are
  separable and normalised per axis in packed resolution, so they sum to exactly 1 everywhere.
- Exactness: where `margin` >= the model's receptive radius (`receptive_radius(depth)`, 122 px
  for the depth-4 U-Net), the result equals one pass of the model over the (extended) frame.
  With a smaller margin tiles disagree slightly near their edges and the ramp blends the
  difference without a seam.
- Memory: one float32 output array (the result) plus one batch of tiles; the frame's tiles are
  never materialised together.
- An axis no longer than `tile` is one tile of the frame's full extent, so an image smaller than
  a tile runs in one pass (the U-Net pads any size itself).

Patch grid: AIM 2022 splits each frame into a 6 x 8 grid of patches `{scene}_{k}`, `k = 8*row + col`
(S7: 504 px RGB / 252 px packed RAW patches of a 3024x4032 frame).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import numpy as np

from revisp_tf.io.images import read_raw_npy, read_rgb
from revisp_tf.models.layers import PadToMultiple

AIM22_ROWS, AIM22_COLS = 6, 8
_PATCH_NAME = re.compile(r"^(?P<scene>.+)_(?P<k>\d+)$")


def receptive_radius(depth: int) -> int:
    """Full-resolution px on each side that one output pixel of the authors' U-Net depends on.

    Interval arithmetic through the net (two 3x3 convs per level, 2x2 pooling, nearest upsample
    + 3x3 conv) gives 2**(depth + 3) - 6, including the worst position on the pooling grid:
    10, 26, 58, 122, 250 for depth 1..5.
    """
    return 2 ** (depth + 3) - 6


def model_alignment(model: keras.Model) -> tuple[int, float]:
    """(alignment, pad value): lcm of 2 and every `PadToMultiple.multiple` in `model`, and the pad constant."""
    align, value = 2, 1.0
    pads = [layer for layer in _all_layers(model) if isinstance(layer, PadToMultiple)]
    for layer in pads:
        align = math.lcm(align, layer.multiple)
    if pads:
        value = pads[0].value
    return align, value


def _all_layers(layer) -> Iterable[keras.layers.Layer]:
    for child in getattr(layer, "layers", []):
        yield child
        yield from _all_layers(child)


def _check_tiling(tile: int, overlap: int, margin: int, batch_size: int, align: int) -> None:
    if tile <= 0 or tile % align:
        raise ValueError(f"tile={tile}: expected a positive multiple of {align} (the model's pooling alignment)")
    if overlap < 0 or overlap % 2 or overlap > tile - align:
        raise ValueError(f"overlap={overlap}: expected an even number in [0, {tile - align}] for tile={tile}")
    if margin < 0 or margin % 2 or 2 * margin > overlap:
        raise ValueError(f"margin={margin}: expected an even number in [0, overlap/2 = {overlap // 2}]")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1")


def _check_frame(rgb) -> np.ndarray:
    """The frame as a NumPy array (no copy when it already is one), validated without full-size temporaries."""
    x = np.asarray(rgb)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"rgb: expected one image of shape (H, W, 3), got {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"rgb: expected a float array with values in [0, 1], got dtype {x.dtype}")
    if x.shape[0] % 2 or x.shape[1] % 2:
        raise ValueError(f"rgb: expected even height and width (whole 2x2 CFA tiles), got {x.shape[0]}x{x.shape[1]}")
    lo, hi = x.min(), x.max()
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(f"rgb: expected finite values in [0, 1], got min {lo:.4g}, max {hi:.4g}")
    return x


def tile_starts(size: int, tile: int, overlap: int, align: int) -> tuple[list[int], int]:
    """(starts, extent) of the tiles along one axis of `size` px.

    Starts are multiples of `align`, consecutive tiles overlap by at least `overlap`, the last
    tile ends at `size` rounded up to `align`. An axis no longer than `tile` is one tile of
    extent `size`.
    """
    if size <= tile:
        return [0], size
    last = -(-size // align) * align - tile
    step = (tile - overlap) // align * align
    count = 1 + -(-last // step)
    return [min(i * step, last) for i in range(count)], tile


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


def infer_tiled(
    model: keras.Model,
    rgb,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 1,
    *,
    margin: int | None = None,
) -> np.ndarray:
    """Runs `model` (RGB -> packed bayer) on a full frame by overlapping tiles; see the module docstring.

    Args:
      model: a model from `build_reverse_isp` (or any RGB (N, H, W, 3) -> (N, H/2, W/2, 4) model).
      rgb: (H, W, 3) float array in [0, 1], H and W even (a NumPy memmap works too).
      tile: tile side in px, a multiple of the model's alignment (16 for a depth-4 U-Net).
      overlap: minimum overlap of neighbouring tiles in px (even).
      batch_size: tiles per model call.
      margin: px at each inner tile edge given weight 0 (even, at most overlap/2); default
        overlap/4 rounded down to even. Use `receptive_radius(depth)` or more for a result
        equal to one pass.

    Returns:
      (H/2, W/2, 4) float32 packed bayer.
    """
    x = _check_frame(rgb)
    align, pad_value = model_alignment(model)
    margin = overlap // 8 * 2 if margin is None else margin
    _check_tiling(tile, overlap, margin, batch_size, align)
    h, w = x.shape[:2]
    ys, th = tile_starts(h, tile, overlap, align)
    xs, tw = tile_starts(w, tile, overlap, align)
    wy, wx = axis_weights(ys, th, margin), axis_weights(xs, tw, margin)
    out = np.zeros((h // 2, w // 2, 4), np.float32)
    jobs = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    for b in range(0, len(jobs), batch_size):
        batch = jobs[b : b + batch_size]
        tiles = np.full((len(batch), th, tw, 3), pad_value, np.float32)
        for k, (i, j) in enumerate(batch):
            part = x[ys[i] : ys[i] + th, xs[j] : xs[j] + tw]
            tiles[k, : part.shape[0], : part.shape[1]] = part
        pred = np.asarray(model.predict_on_batch(tiles))
        for k, (i, j) in enumerate(batch):
            py, px = ys[i] // 2, xs[j] // 2
            ph, pw = min(th // 2, h // 2 - py), min(tw // 2, w // 2 - px)
            weight = wy[i][:ph, None, None] * wx[j][None, :pw, None]
            out[py : py + ph, px : px + pw] += weight * pred[k, :ph, :pw]
    return out


def _patch_key(path: Path) -> tuple[str, int]:
    m = _PATCH_NAME.match(path.stem)
    if not m:
        raise ValueError(f"{path}: expected a patch file named {{scene}}_{{k}} (AIM 2022 layout, k = 8*row + col)")
    return m["scene"], int(m["k"])


def group_patch_files(paths: Iterable, rows: int = AIM22_ROWS, cols: int = AIM22_COLS) -> dict[str, list[Path]]:
    """Groups `{scene}_{k}` files by scene, each list ordered by k; every scene must have all rows*cols patches."""
    scenes: dict[str, dict[int, Path]] = {}
    for p in map(Path, paths):
        scene, k = _patch_key(p)
        if k in scenes.setdefault(scene, {}):
            raise ValueError(f"{p}: patch {k} of scene {scene} given twice ({scenes[scene][k]})")
        scenes[scene][k] = p
    grouped = {}
    for scene, found in scenes.items():
        missing = sorted(set(range(rows * cols)) - set(found))
        extra = sorted(set(found) - set(range(rows * cols)))
        if missing or extra:
            raise ValueError(
                f"scene {scene}: expected patches {scene}_0 .. {scene}_{rows * cols - 1} ({rows}x{cols} grid), "
                f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected {extra[:8]}"
            )
        grouped[scene] = [found[k] for k in range(rows * cols)]
    return grouped


def _load_patch(p) -> np.ndarray:
    if isinstance(p, (str, Path)):
        return read_raw_npy(p) if Path(p).suffix == ".npy" else read_rgb(p)
    return np.asarray(p)


def stitch_patches(patches: Sequence, rows: int = AIM22_ROWS, cols: int = AIM22_COLS) -> np.ndarray:
    """Rebuilds a frame from its rows*cols patches (arrays or image / .npy paths) given in order k = cols*row + col."""
    if len(patches) != rows * cols:
        raise ValueError(f"stitch_patches: expected {rows * cols} patches ({rows}x{cols} grid), got {len(patches)}")
    arrays = [_load_patch(p) for p in patches]
    first = arrays[0]
    for k, a in enumerate(arrays):
        if a.shape != first.shape or a.dtype != first.dtype:
            name = patches[k] if isinstance(patches[k], (str, Path)) else f"patch {k}"
            raise ValueError(f"{name}: shape {a.shape} {a.dtype}; expected {first.shape} {first.dtype} like patch 0")
    return np.concatenate([np.concatenate(arrays[r * cols : (r + 1) * cols], axis=1) for r in range(rows)], axis=0)


def unstitch(frame, rows: int = AIM22_ROWS, cols: int = AIM22_COLS) -> list[np.ndarray]:
    """Splits a frame into its rows*cols equal patches, in order k = cols*row + col."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    if h % rows or w % cols:
        raise ValueError(f"unstitch: frame {h}x{w} does not split into a {rows}x{cols} grid of equal patches")
    ph, pw = h // rows, w // cols
    return [frame[r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] for r in range(rows) for c in range(cols)]
