"""Full-resolution inference by overlapping tiles.

Tiling (`TiledInference`):
- Tiles are at most `tile` px a side (the smallest aligned side that needs no more tiles than
  `tile` would, `tile_starts`) and start at multiples of the model's alignment: the multiple its
  U-Nets pad to (2**depth, found from its `PadToMultiple` layers), never less than 2. Even starts
  keep the CFA phase; multiples of 2**depth put every tile on the same max-pooling grid, so two
  tiles compute the same values wherever both see enough context.
- A frame that is not a multiple of the alignment is extended at the bottom and right with the
  model's own pad constant (1.0 for the authors' U-Net); the extension is cropped off.
- Neighbouring tiles overlap by at least `overlap` px. Inside each overlap the first `margin` px
  from a tile's inner edge get weight 0 (context only: the zero padding of every convolution at
  the tile edge distorts them), then a raised-cosine ramp hands over to the neighbour. Weights are
  separable and normalised per axis in packed resolution, so they sum to exactly 1 everywhere.
- Exactness: where `margin` >= the model's receptive radius (2**(depth + 3) - 6 px: 122 px
  for the depth-4 U-Net), the result equals one pass of the model over the (extended) frame.
  With a smaller margin tiles disagree slightly near their edges and the ramp blends the
  difference without a seam.
- Inputs: the frame as uint8 / uint16 samples (scaled per tile, as `read_rgb` scales them) or
  float in [0, 1]; a model with a second input 'context' gets its frame context sliced exactly
  like the RGB (an (H, W, C) array, or a window function for frames too large to hold it).
- Skipping (mask-fusion models, `fusion_parts`): the mask of every tile is computed first; a tile
  whose blended output region (packed pixels of weight > 0 inside the frame, i.e. their 2x2
  blocks) has no mask > 0 runs only the NOE net, the OE net's output taken as 0 where the fusion
  gives it weight 0; a tile with mask 1 there runs only the OE net. Tiles of each kind are
  batched together. If the fused image reaches the output through anything but per-pixel layers
  and the mosaic, the whole tile's mask decides instead. The output equals running both nets on
  every tile, to float rounding.
- Memory: tiles run in groups of whole tile rows (enough to fill a batch) and finished output
  rows leave as bands (`TiledInference.bands`), so what inference holds besides the input frame
  is one group of tile rows and one batch of tiles, whatever the frame's size; with `out` (a
  memmap or a streaming writer) the result is never held whole either.
- An axis no longer than `tile` is one tile of the frame's full extent, so an image smaller than
  a tile runs in one pass (the U-Net pads any size itself).

Patch grid: AIM 2022 splits each frame into a 6 x 8 grid of patches `{scene}_{k}`, `k = 8*row + col`
(S7: 504 px RGB / 252 px packed RAW patches of a 3024x4032 frame).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Iterator

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from revisp_tf.infer.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, axis_weights, blended, check_tiling, tile_starts
from revisp_tf.models.inference_form import FusionParts, fusion_parts
from revisp_tf.models.layers import PadToMultiple


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


def _check_frame(rgb) -> np.ndarray:
    """The frame as a NumPy array (no copy when it already is one), validated without full-size temporaries."""
    x = np.asarray(rgb)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"rgb: expected one image of shape (H, W, 3), got {x.shape}")
    if x.dtype.kind != "f" and x.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"rgb: expected uint8, uint16 or a float array with values in [0, 1], got dtype {x.dtype}")
    if x.shape[0] % 2 or x.shape[1] % 2:
        raise ValueError(f"rgb: expected even height and width (whole 2x2 CFA tiles), got {x.shape[0]}x{x.shape[1]}")
    if x.dtype.kind == "f":
        lo, hi = x.min(), x.max()
        if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
            raise ValueError(f"rgb: expected finite values in [0, 1], got min {lo:.4g}, max {hi:.4g}")
    return x


def _check_context(context, h: int, w: int):
    """None, a window function, or the (H, W, C) context array of the frame (checked against its size)."""
    if context is None or callable(context):
        return context
    c = np.asarray(context)
    if c.ndim != 3 or c.shape[:2] != (h, w) or c.dtype.kind != "f":
        raise ValueError(f"context: expected a float array (H, W, C) = ({h}, {w}, C) like the frame, got {c.shape} {c.dtype}")
    return c


def unit_float(part: np.ndarray) -> np.ndarray:
    """float32 values in [0, 1]: integer samples scaled by their type's maximum, as `read_rgb` scales them."""
    if part.dtype.kind == "u":
        return part.astype(np.float32) / np.float32(np.iinfo(part.dtype).max)
    return np.asarray(part, np.float32)


# Which nets a tile of a mask-fusion model runs: both; only NOE (mask 0 on all its output
# depends on); only OE (mask 1 there).
TILE_KINDS = ("both", "noe", "oe")


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """The tiles of one frame: starts and extent per axis, blend weights, and the kind of each tile (rows x cols)."""

    ys: list[int]
    xs: list[int]
    th: int
    tw: int
    wy: list[np.ndarray]
    wx: list[np.ndarray]
    kinds: np.ndarray

    @property
    def tiles(self) -> int:
        return self.kinds.size

    def count(self, kind: str) -> int:
        return int(np.sum(self.kinds == kind))

    @property
    def oe_share(self) -> float:
        """Share of the tiles that run the OE net."""
        return (self.count("both") + self.count("oe")) / self.tiles


class TiledInference:
    """Runs a reverse-ISP model over whole frames by overlapping tiles; build it once, call it per frame.

    Args:
      model: RGB (N, H, W, 3) [+ context (N, H, W, C)] -> packed bayer (N, H/2, W/2, 4), e.g. from
        `build_reverse_isp` or its `inference_form`.
      skip_oe: for a mask-fusion (dual) model, run the OE net only on tiles whose blended output
        region holds an overexposed pixel (and the NOE net only where one is not overexposed). The
        output equals running both everywhere, to float rounding.
      jit_compile: compile each tile batch's computation with XLA.
    """

    def __init__(self, model: keras.Model, *, skip_oe: bool = True, jit_compile: bool = False):
        names = [t.name for t in model.inputs]
        if len(names) > 1 and sorted(names) != ["context", "rgb"]:
            raise ValueError(f"{model.name}: expected inputs 'rgb' and optionally 'context', got {names}")
        self.model = model
        self.input_names = names if len(names) > 1 else ["rgb"]
        self.align, self.pad_value = model_alignment(model)
        self.parts = fusion_parts(model) if skip_oe else None
        specs = [tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]
        runs = {"both": lambda *xs: _call(model, xs)}
        if self.parts is not None:
            runs.update({kind: functools.partial(_one_branch, self.parts, kind) for kind in ("noe", "oe")})
            self._mask = tf.function(lambda *xs: _call(self.parts.mask, xs), input_signature=specs, autograph=False)
        # No Python control flow on tensors in these: autograph (which re-reads source files) is not needed.
        self._run = {k: tf.function(f, input_signature=specs, jit_compile=jit_compile, autograph=False)
                     for k, f in runs.items()}

    def warm_up(self, height: int, width: int, batch_size: int = 1) -> None:
        """Traces (and with XLA compiles) every tile computation for batches of (height, width) tiles."""
        channels = [t.shape[-1] for t in self.model.inputs]
        zeros = [np.zeros((batch_size, height, width, c), np.float32) for c in channels]
        for run in self._run.values():
            run(*zeros)
        if self.parts is not None:
            self._mask(*zeros)

    def plan(self, rgb, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, *, margin: int | None = None, context=None,
             batch_size: int = 1) -> TilePlan:
        """The tiles of a frame and what each runs (the overexposure mask of every tile, computed first)."""
        x = _check_frame(rgb)
        return self._plan(x, tile, overlap, margin, _check_context(context, *x.shape[:2]), batch_size)

    def _plan(self, x: np.ndarray, tile: int, overlap: int, margin, context, batch_size: int) -> TilePlan:
        h, w = x.shape[:2]
        margin = overlap // 8 * 2 if margin is None else margin
        check_tiling(tile, overlap, margin, self.align)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected at least 1")
        ys, th = tile_starts(h, tile, overlap, self.align)
        xs, tw = tile_starts(w, tile, overlap, self.align)
        wy, wx = axis_weights(ys, th, margin), axis_weights(xs, tw, margin)
        kinds = np.full((len(ys), len(xs)), "both", dtype=object)
        if self.parts is not None:
            for i, j in np.ndindex(kinds.shape):
                mask = self._mask(*self._inputs(x, context, [(ys[i], xs[j])], th, tw)).numpy()[0, ..., 0]
                region = mask
                if self.parts.block_local and mask.shape == (th, tw):
                    rows = blended(wy[i], h // 2 - ys[i] // 2)
                    cols = blended(wx[j], w // 2 - xs[j] // 2)
                    region = mask[2 * rows.start : 2 * rows.stop, 2 * cols.start : 2 * cols.stop]
                oe, noe = bool(np.any(region != 0)), bool(np.any(region != 1))
                kinds[i, j] = "both" if oe and noe else "oe" if oe else "noe"
        return TilePlan(ys, xs, th, tw, wy, wx, kinds)

    def _inputs(self, x, context, origins, th: int, tw: int) -> list[np.ndarray]:
        """The model inputs of tiles at `origins` (y0, x0): frame values, the pad value beyond the frame."""
        h, w = x.shape[:2]
        batches = {}
        for name in self.input_names:
            tiles = None
            for k, (y0, x0) in enumerate(origins):
                ph, pw = min(th, h - y0), min(tw, w - x0)
                if name == "rgb":
                    part = unit_float(x[y0 : y0 + ph, x0 : x0 + pw])
                elif callable(context):
                    part = np.asarray(context(y0, x0, ph, pw), np.float32)
                elif context is not None:
                    part = np.asarray(context[y0 : y0 + ph, x0 : x0 + pw], np.float32)
                else:
                    raise ValueError(f"{self.model.name} takes a 'context' input: pass context= (array or window function)")
                if tiles is None:
                    tiles = np.full((len(origins), th, tw, part.shape[-1]), self.pad_value, np.float32)
                tiles[k, :ph, :pw] = part
            batches[name] = tiles
        return [batches[name] for name in self.input_names]

    def bands(self, rgb, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, batch_size: int = 1, *, margin: int | None = None,
              context=None, progress: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (first packed row, finished rows (n, W/2, 4) float32) top to bottom, as the tiles complete.

        Tiles are run in groups of whole tile rows (enough rows to fill a batch), each kind batched
        apart; only the rows that later tiles can still add to are held, in one buffer reused for
        the whole frame. A band is a view into that buffer: valid until the next one is asked for.
        """
        x = _check_frame(rgb)
        context = _check_context(context, *x.shape[:2])
        plan = self._plan(x, tile, overlap, margin, context, batch_size)
        ys, xs, th, tw = plan.ys, plan.xs, plan.th, plan.tw
        h2, w2 = x.shape[0] // 2, x.shape[1] // 2
        group = max(1, -(-batch_size // len(xs)))
        groups = [range(first, min(first + group, len(ys))) for first in range(0, len(ys), group)]
        ends = [min(ys[rows[-1]] // 2 + th // 2, h2) for rows in groups]  # the last packed row each group adds to
        acc = np.zeros((max(end - ys[rows[0]] // 2 for rows, end in zip(groups, ends)), w2, 4), np.float32)
        acc_y0, held = 0, 0  # acc[:held] holds rows acc_y0.. added to by earlier groups
        with tqdm(total=plan.tiles, desc="tiles", unit="tile", disable=not progress, leave=False) as bar:
            for rows, end in zip(groups, ends):
                acc[held : end - acc_y0] = 0.0
                for kind in TILE_KINDS:
                    jobs = [(i, j) for i in rows for j in range(len(xs)) if plan.kinds[i, j] == kind]
                    for b in range(0, len(jobs), batch_size):
                        batch = jobs[b : b + batch_size]
                        inputs = self._inputs(x, context, [(ys[i], xs[j]) for i, j in batch], th, tw)
                        pred = np.asarray(self._run[kind](*inputs))
                        for k, (i, j) in enumerate(batch):
                            py, px = ys[i] // 2, xs[j] // 2
                            ph, pw = min(th // 2, h2 - py), min(tw // 2, w2 - px)
                            weight = plan.wy[i][:ph, None, None] * plan.wx[j][None, :pw, None]
                            acc[py - acc_y0 : py - acc_y0 + ph, px : px + pw] += weight * pred[k, :ph, :pw]
                        bar.update(len(batch))
                done = ys[rows[-1] + 1] // 2 if rows[-1] + 1 < len(ys) else h2
                yield acc_y0, acc[: done - acc_y0]
                held = end - done
                acc[:held] = acc[done - acc_y0 : end - acc_y0].copy()  # rows the next group adds to
                acc_y0 = done

    def __call__(self, rgb, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, batch_size: int = 1, *, margin: int | None = None,
                 context=None, out=None, progress: bool = False):
        """The (H/2, W/2, 4) float32 packed bayer of a frame, or `out` filled with it (rows assigned once, in order)."""
        if out is None:
            h, w = np.shape(rgb)[:2]
            out = np.zeros((h // 2, w // 2, 4), np.float32)
        for y0, rows in self.bands(rgb, tile, overlap, batch_size, margin=margin, context=context, progress=progress):
            out[y0 : y0 + len(rows)] = rows
        return out


def _call(model: keras.Model, inputs):
    return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)


def _one_branch(parts: FusionParts, branch: str, *inputs):
    """The model's output with only one branch run; the other's output, weighted by 0 there, taken as 0."""
    y = _call(parts.noe if branch == "noe" else parts.oe, inputs)
    zeros = tf.zeros_like(y)
    oe, noe = (zeros, y) if branch == "noe" else (y, zeros)
    return parts.fuse([*inputs, oe, noe], training=False)
