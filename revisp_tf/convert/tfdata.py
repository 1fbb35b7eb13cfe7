"""RAW on the fly in tf.data: (RGB, RAW) pairs from an RGB dataset, for training RAW-domain models.

Brooks et al.'s UPI made RAW training data inside tf.data by inverting a classical ISP; `with_raw`
does the same with a reverse-ISP model of this project in UPI's place:

    images = tf.data.Dataset.from_tensor_slices(paths).map(lambda p: tf.io.decode_png(tf.io.read_file(p)))
    pairs = with_raw(images, load_inference_model(path), batch_size=8)   # (rgb, raw) elements

Each image is one frame: the model runs on it whole (a model with a global stage gets the frame's
context, `frame_context`), so the RAW equals `revisp-tf infer`'s for images that fit one tile
(at most `--tile`, 512 px, a side), to float rounding (`infer` runs only one branch of a dual
net where the overexposure mask lets it). For larger images `infer`'s tiles see less context
near their edges, and the two differ there slightly. Images of the same size are batched
together for the model (`group_by_window`), so the output order is not the input order.
Odd heights or widths lose their last row or column (a bayer tile is 2x2); the RGB returned
is the cropped one, so the pair stays aligned.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.global_stage.context import CONTEXT_CHANNELS, frame_context

_SAMPLE_MAX = {tf.uint8: 255.0, tf.uint16: 65535.0}


def unit_rgb(rgb) -> tf.Tensor:
    """float32 RGB in [0, 1]: integer samples divided by their type's maximum, as `read_rgb` does."""
    rgb = tf.convert_to_tensor(rgb)
    scale = _SAMPLE_MAX.get(rgb.dtype)
    if scale is not None:
        return tf.cast(rgb, tf.float32) / scale
    return tf.cast(rgb, tf.float32)


def crop_even(rgb) -> tf.Tensor:
    """The image (…, H, W, C) without its last row / column where H / W is odd."""
    shape = tf.shape(rgb)
    return rgb[..., : shape[-3] // 2 * 2, : shape[-2] // 2 * 2, :]


def _contexts(frames: np.ndarray) -> np.ndarray:
    return np.stack([frame_context(f) for f in frames]).astype(np.float32)


def raw_fn(model):
    """rgb (H, W, 3) or (N, H, W, 3), uint8 / uint16 / float in [0, 1], H and W even -> (rgb float32, packed RAW).

    The RAW is (…, H/2, W/2, 4) float32 in model units. Runs eagerly and inside `Dataset.map`.
    """
    with_context = "context" in [t.name for t in model.inputs]

    def fn(rgb):
        rgb = unit_rgb(rgb)
        batch = rgb[tf.newaxis] if rgb.shape.rank == 3 else rgb
        inputs = [batch]
        if with_context:  # inputs named rgb and context, in the model's order
            context = tf.numpy_function(_contexts, [batch], tf.float32, stateful=False)
            context = tf.ensure_shape(context, batch.shape[:-1].concatenate([CONTEXT_CHANNELS]))
            inputs = [batch, context] if model.inputs[0].name == "rgb" else [context, batch]
        raw = model(inputs if with_context else batch, training=False)
        return rgb, (raw[0] if rgb.shape.rank == 3 else raw)

    return fn


def _size_key(rgb) -> tf.Tensor:
    shape = tf.shape(rgb, out_type=tf.int64)
    return shape[0] * (1 << 32) + shape[1]


def with_raw(dataset: tf.data.Dataset, model, batch_size: int = 8) -> tf.data.Dataset:
    """(rgb) elements of any size -> (rgb float32, RAW) elements, same-size images run together in batches of `batch_size`."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1")
    batches = dataset.map(crop_even).group_by_window(
        key_func=_size_key, reduce_func=lambda _, window: window.batch(batch_size), window_size=batch_size
    )
    return batches.map(raw_fn(model)).unbatch()
