"""The tf.data input pipeline: decode, then crop and augment, then batch and prefetch.

Elements are dicts of float32 tensors: "rgb" (N, crop, crop, 3) in [0, 1]; "raw" (N, crop/2,
crop/2, 4) packed RGGB in model units (`sensor.to_model_units`); "demosaiced" (N, crop,
crop, 3) when requested; "context" (N, crop, crop, CONTEXT_CHANNELS) when frame contexts are
given (models with a global stage): each pixel's slice of its frame's context, computed in the
graph from the frame's summary and the patch's place, then cut and transformed with the RGB.
RGB-only examples give "rgb" alone (in scan order, for inference).

Keeping the bayer correct under augmentation: the RAW is unpacked to its full-resolution
mosaic plane and cut, flipped and rotated together with the RGB and the demosaiced RAW, so
all three stay pixel-aligned. Crop windows start at even offsets (the CFA phase is kept).
A flip or rotation of an even-sized RGGB window makes it GRBG, GBRG or BGGR; the window is
taken 2 px larger and the output re-cropped at the (dy, dx) that restores RGGB
(`bayer.cfa_shift`), so the output size never changes. Transposing swaps the two green
channels (G at (0,1) then holds the former row-1 greens), which is still a correct RGGB mosaic.
Only the identity and the transpose keep the phase without a margin: `augment="transpose"`
works on crops as large as the image (504 crops of 504 AIM S7 patches); "dihedral" (all 8
flips/rotations) needs images at least crop + 2 px per side.

Files are decoded in the graph (a .npy body by `decode_raw` from its header offset), so
the map functions run in parallel without the GIL. Pre-loading decoded examples into memory
measured only ~20 % faster here and would hold ~30 GB of float32 for the S7 training set.

Randomness is stateless: each element's crop and transform come from (seed, draw index), so
a pipeline is reproducible given its seed, whatever the parallelism.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from revisp_tf.choices import AUGMENTS
from revisp_tf.data.examples import canonical_raw, canonical_rgb
from revisp_tf.data.scan import DataError, Example, npy_layout, rggb_size
from revisp_tf.global_stage.context import CONTEXT_CHANNELS
from revisp_tf.global_stage.layers import context_window_tf
from revisp_tf.isp import bayer
from revisp_tf.isp.bayer import CANONICAL_CFA
from revisp_tf.isp.sensor import SensorSpec

N_OPS = 8  # dihedral ops: op // 4 = flip left-right first, op % 4 = quarter turns counter-clockwise


def _np_dihedral(x: np.ndarray, op: int) -> np.ndarray:
    return np.rot90(np.fliplr(x) if op >= 4 else x, op % 4)


def _pattern_after(op: int) -> str:
    """CFA pattern at the origin of an even-sized RGGB mosaic after dihedral op `op`."""
    colors = np.tile(np.array(list(CANONICAL_CFA)).reshape(2, 2), (2, 2))
    return "".join(_np_dihedral(colors, op)[:2, :2].ravel())


# (dy, dx) that brings each transformed window back to the RGGB phase.
PHASE = tuple(bayer.cfa_shift(_pattern_after(op), CANONICAL_CFA) for op in range(N_OPS))
_OPS = {
    "none": (0,),
    "transpose": tuple(op for op in range(N_OPS) if PHASE[op] == (0, 0)),
    "dihedral": tuple(range(N_OPS)),
}


def augment_ops(augment) -> tuple[int, ...]:
    """The dihedral ops an `augment` setting draws from (True = "dihedral", False/None = "none")."""
    name = {True: "dihedral", False: "none", None: "none"}.get(augment, augment)
    if name not in _OPS:
        raise ValueError(f"augment: expected one of {', '.join(AUGMENTS)} (or True/False), got {augment!r}")
    return _OPS[name]


def margin(ops) -> int:
    """Extra window size the ops need to restore the RGGB phase (0 or 2 px)."""
    return 2 if any(PHASE[op] != (0, 0) for op in ops) else 0


def dihedral(x, op):
    """Flips (H, W, C) left-right if op >= 4, then turns it op % 4 quarter turns counter-clockwise."""
    x = tf.cond(op >= 4, lambda: tf.reverse(x, [1]), lambda: x)
    return tf.image.rot90(x, op % 4)


# ----------------------------------------------------------------------------- decode


@dataclasses.dataclass(frozen=True)
class _ArrayFormat:
    """How a RAW or demosaiced file is stored: "png" (16-bit mosaic) or a .npy dtype string."""

    kind: str

    @staticmethod
    def of(path) -> "_ArrayFormat":
        return _ArrayFormat("png" if str(path).endswith(".png") else npy_layout(path).dtype)


def _decode_rgb(path):
    """JPEG or PNG (8 or 16 bit) -> float32 (H, W, 3) in [0, 1], sample for sample as io.read_rgb."""
    data = tf.io.read_file(path)
    # INTEGER_ACCURATE is libjpeg's default IDCT (OpenCV, PIL); TF's default differs by up to 4/255.
    jpeg = lambda: tf.cast(tf.io.decode_jpeg(data, 3, dct_method="INTEGER_ACCURATE"), tf.float32) / 255.0  # noqa: E731
    # An 8-bit PNG decoded as uint16 is scaled by 257, so /65535 gives exactly x/255.
    png = lambda: tf.cast(tf.io.decode_png(data, 3, dtype=tf.uint16), tf.float32) / 65535.0  # noqa: E731
    rgb = tf.cond(tf.io.is_jpeg(data), jpeg, png)
    rgb.set_shape([None, None, 3])
    return rgb


def _decode_array(path, offset, shape, fmt: _ArrayFormat):
    """A .npy body (C order, little-endian, header already parsed) or a 16-bit PNG, as float32."""
    data = tf.io.read_file(path)
    if fmt.kind == "png":
        return tf.cast(tf.io.decode_png(data, 1, dtype=tf.uint16), tf.float32)
    body = tf.strings.substr(data, offset, tf.strings.length(data) - offset)
    values = tf.io.decode_raw(body, tf.as_dtype(np.dtype(fmt.kind).name), little_endian=True)
    return tf.reshape(tf.cast(values, tf.float32), shape)


def records(examples, with_raw: bool, with_demosaiced: bool, contexts=None) -> dict:
    """Column tensors of file paths and .npy data offsets/shapes, one row per example.

    `contexts`: (FrameContext, y, x) per example (`global_stage.placement.frame_contexts`), or None.
    """
    cols = {"rgb": [str(e.rgb) for e in examples]}
    if contexts is not None:
        cols["ctx_grid"] = np.stack([c.grid for c, _, _ in contexts])
        cols["ctx_values"] = np.stack([c.frame_values for c, _, _ in contexts])
        cols["ctx_frame"] = np.array([c.shape for c, _, _ in contexts], np.int32)
        cols["ctx_origin"] = np.array([(y, x) for _, y, x in contexts], np.int32)
    for key, on in (("raw", with_raw), ("demosaiced", with_demosaiced)):
        if not on:
            continue
        paths = [getattr(e, key) for e in examples]
        layouts = [None if p.suffix == ".png" else npy_layout(p) for p in paths]
        cols[key] = [str(p) for p in paths]
        cols[f"{key}_offset"] = np.array([lay.offset if lay else 0 for lay in layouts], np.int32)
        shapes = [lay.shape if lay else (0, 0, 0) for lay in layouts]
        cols[f"{key}_shape"] = np.array(shapes, np.int32).reshape(len(paths), -1)
    return cols


def make_decoder(sensor: SensorSpec | None, raw_format=None, demosaiced_format=None):
    """The decode map function: a `records` row -> {"rgb"[, "raw"][, "demosaiced"]} at full resolution."""

    def decode(record):
        out = {"rgb": _decode_rgb(record["rgb"])}
        if "ctx_grid" in record:
            size = tf.shape(out["rgb"])[:2]
            context = context_window_tf(record["ctx_grid"], record["ctx_values"], record["ctx_frame"], record["ctx_origin"], size)
            context.set_shape([None, None, CONTEXT_CHANNELS])
            out["context"] = context
        if raw_format is not None:
            raw = _decode_array(record["raw"], record["raw_offset"], record["raw_shape"], raw_format)
            raw = canonical_raw(bayer.pack(raw) if raw_format.kind == "png" else raw, sensor)
            out["rgb"] = canonical_rgb(out["rgb"], sensor)
            if "context" in out:
                out["context"] = canonical_rgb(out["context"], sensor)
            raw.set_shape([None, None, 4])
            out["raw"] = raw
        if demosaiced_format is not None:
            dem = _decode_array(
                record["demosaiced"], record["demosaiced_offset"], record["demosaiced_shape"], demosaiced_format
            )
            dem.set_shape([None, None, 3])
            out["demosaiced"] = dem
        return out

    return decode


# ----------------------------------------------------------------------------- crop and augment


def _stack(features):
    """Full-resolution planes side by side: rgb (3), mosaic (1), demosaiced (3), context, whichever are present."""
    planes = [features["rgb"]]
    if "raw" in features:
        planes.append(bayer.unpack(features["raw"]))
    if "demosaiced" in features:
        planes.append(features["demosaiced"])
    if "context" in features:
        planes.append(features["context"])
    return tf.concat(planes, axis=-1)


def _unstack(x, features, crop):
    """Inverse of `_stack` on a (crop, crop, C) window; the mosaic plane is packed back."""
    out = {"rgb": x[..., :3]}
    c = 3
    if "raw" in features:
        out["raw"] = bayer.pack(x[..., c : c + 1])
        c += 1
    if "demosaiced" in features:
        out["demosaiced"] = x[..., c : c + 3]
        c += 3
    if "context" in features:
        out["context"] = x[..., c : c + CONTEXT_CHANNELS]
    shapes = {"raw": [crop // 2, crop // 2, 4], "context": [crop, crop, CONTEXT_CHANNELS]}
    for key, v in out.items():
        v.set_shape(shapes.get(key, [crop, crop, 3]))
    return out


def sample_params(seed, index, hw, crop: int, ops):
    """(y0, x0, op): an even window origin for a (crop + margin) window inside `hw`, and a dihedral op."""
    seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)]), 3)
    win = crop + margin(ops)
    draw = lambda s, n: tf.random.stateless_uniform([], s, 0, n, tf.int32)  # noqa: E731
    y0 = 2 * draw(seeds[0], (hw[0] - win) // 2 + 1)
    x0 = 2 * draw(seeds[1], (hw[1] - win) // 2 + 1)
    op = tf.gather(tf.constant(ops, tf.int32), draw(seeds[2], len(ops)))
    return y0, x0, op


def apply_params(features, y0, x0, op, crop: int, ops):
    """Cuts the window at (y0, x0), applies dihedral `op`, re-crops at the RGGB phase: all planes alike."""
    win = crop + margin(ops)
    x = dihedral(_stack(features)[y0 : y0 + win, x0 : x0 + win], op)
    dy = tf.gather(tf.constant([p[0] for p in PHASE], tf.int32), op)
    dx = tf.gather(tf.constant([p[1] for p in PHASE], tf.int32), op)
    return _unstack(x[dy : dy + crop, dx : dx + crop], features, crop)


def make_augmenter(crop: int, augment, seed: int):
    """The training map function: (draw index, features) -> randomly cropped and transformed features."""
    ops = augment_ops(augment)

    def augment_fn(index, features):
        hw = tf.shape(features["rgb"])[:2]
        y0, x0, op = sample_params(seed, index, hw, crop, ops)
        return apply_params(features, y0, x0, op, crop, ops)

    return augment_fn


def check_jpeg_quality(jpeg_quality) -> tuple[int, int] | None:
    """A (low, high) JPEG quality range in 1..100 (low <= high), or None; ValueError otherwise."""
    if jpeg_quality is None:
        return None
    q = tuple(int(v) for v in jpeg_quality)
    if len(q) != 2 or not 1 <= q[0] <= q[1] <= 100:
        raise ValueError(f"jpeg_quality: expected (low, high) with 1 <= low <= high <= 100, got {jpeg_quality!r}")
    return q


def make_jpeg_augmenter(jpeg_quality, seed: int):
    """(draw index, features) -> features with the RGB JPEG-recompressed at a random quality in [low, high].

    Only the RGB changes, as a camera's JPEG does; the model computes the overexposure mask from
    it afterwards. The quality comes from (seed, index), like the crop.
    """
    low, high = check_jpeg_quality(jpeg_quality)

    def jpeg_fn(index, features):
        key = tf.stack([tf.cast(seed, tf.int64) + 1, tf.cast(index, tf.int64)])  # another stream than the crop's
        quality = tf.random.stateless_uniform([], key, low, high + 1, tf.int32)
        # libjpeg's accurate IDCT, as OpenCV, PIL and cameras' viewers decode: TF's default is another
        # IDCT (off by up to 4/255), so the nets would learn other artefacts than they are given.
        # Rounded to 8 bits first: adjust_jpeg_quality's own conversion is floor(x * 255.5).
        rgb8 = tf.round(tf.clip_by_value(features["rgb"], 0.0, 1.0) * 255.0) / 255.0
        rgb = tf.image.adjust_jpeg_quality(rgb8, quality, dct_method="INTEGER_ACCURATE")
        rgb.set_shape(features["rgb"].shape)
        return {**features, "rgb": rgb}

    return jpeg_fn


def make_center_cropper(crop: int):
    """The evaluation map function: the central crop x crop window at an even offset."""

    def center_crop(features):
        hw = tf.shape(features["rgb"])[:2]
        y0, x0 = (hw[0] - crop) // 4 * 2, (hw[1] - crop) // 4 * 2
        return apply_params(features, y0, x0, tf.constant(0), crop, (0,))

    return center_crop


# ----------------------------------------------------------------------------- dataset


def _check_request(examples, crop, ops, with_demosaiced, sensor, training):
    """Fails before building anything when the request cannot be met (names an offending file)."""
    if not examples:
        raise ValueError("examples: expected at least one Example, got none")
    has_raw = {e.raw is not None for e in examples}
    if len(has_raw) > 1:
        raise ValueError("examples: mix RGB-only and paired examples; expected all of one kind")
    paired = has_raw.pop()
    if paired and not isinstance(sensor, SensorSpec):
        raise ValueError(f"sensor: paired examples need a SensorSpec for RAW normalisation, got {sensor!r}")
    if training and crop is None:
        raise ValueError("crop: training needs a crop size (batches need equal sizes)")
    if crop is not None and (crop <= 0 or crop % 2):
        raise ValueError(f"crop: expected a positive even size (whole 2x2 CFA tiles), got {crop}")
    if paired and with_demosaiced:
        missing = [e for e in examples if e.demosaiced is None]
        if missing:
            raise DataError(
                f"{missing[0].raw}: no demosaiced RAW beside it ({len(missing)} of {len(examples)} examples lack one);"
                " run `revisp-tf prepare-gt DATA_DIR` first, or pass with_demosaiced=False"
            )
    if crop is not None:
        need = crop + (margin(ops) if training else 0)
        sizes = [(rggb_size(e.size, sensor) if paired else e.size, e) for e in examples]
        (h, w), small = min(sizes, key=lambda s: min(s[0]))
        if min(h, w) < need:
            hint = " (augment='dihedral' needs 2 px to restore the RGGB phase; augment='transpose' needs none)"
            raise ValueError(f"{small.rgb}: {h}x{w} is smaller than the {need}x{need} window crop {crop} needs" + hint)


def _format(examples, key: str):
    """The one storage format shared by the `key` files of all examples."""
    formats = {_ArrayFormat.of(getattr(e, key)) for e in examples}
    if len(formats) > 1:
        raise ValueError(f"{key} files: mixed storage formats {sorted(f.kind for f in formats)}; expected one")
    return formats.pop()


def make_dataset(
    examples: list[Example],
    crop: int | None = None,
    batch_size: int = 6,
    training: bool = True,
    seed: int = 0,
    augment=True,
    with_demosaiced: bool = True,
    sensor: SensorSpec | None = None,
    contexts=None,
    jpeg_quality=None,
) -> tf.data.Dataset:
    """Batched, prefetched dataset of the examples (see the module docstring for the element dicts).

    training=True: shuffled, cropped at random even offsets, augmented, repeated forever (pass
    `steps_per_epoch = len(examples) // batch_size` to `fit`), partial batches dropped.
    training=False: one pass in scan order, central crop at an even offset, or whole images
    when crop is None (then equal sizes or batch_size=1).

    Args:
      examples: from `scan_pairs` (paired) or `scan_rgb` (RGB only), not mixed.
      crop: even output size at full resolution (the RAW is crop/2).
      augment: "dihedral" (True), "transpose" or "none" (False); see the module docstring.
      with_demosaiced: add "demosaiced" (every paired example needs its `prepare_gt` file).
      sensor: how stored RAW maps to model units; required for paired examples.
      contexts: (FrameContext, y, x) per example (`global_stage.placement.frame_contexts`) to add "context".
      jpeg_quality: training only: (low, high) to JPEG-recompress each RGB at a random quality
        in that range after the crop (`make_jpeg_augmenter`); None: the RGB as stored.
    """
    ops = augment_ops(augment)
    jpeg_quality = check_jpeg_quality(jpeg_quality)
    _check_request(examples, crop, ops, with_demosaiced, sensor, training)
    paired = examples[0].raw is not None
    with_demosaiced = paired and with_demosaiced
    decode = make_decoder(
        sensor,
        _format(examples, "raw") if paired else None,
        _format(examples, "demosaiced") if with_demosaiced else None,
    )
    ds = tf.data.Dataset.from_tensor_slices(records(examples, paired, with_demosaiced, contexts))
    if training:
        ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True).repeat().enumerate()
        augment_fn = make_augmenter(crop, augment, seed)
        ds = ds.map(lambda i, r: (i, decode(r)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if jpeg_quality is not None:
            jpeg_fn = make_jpeg_augmenter(jpeg_quality, seed)
            ds = ds.map(lambda i, f: (i, augment_fn(i, f)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            ds = ds.map(jpeg_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:
            ds = ds.map(augment_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if crop is not None:
            ds = ds.map(make_center_cropper(crop), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)
