"""Small random models that behave like trained ones numerically, and generated frames, for tests."""

import keras
import numpy as np
import tensorflow as tf

from revisp_tf.models import build_reverse_isp


def lively_model(variant="single", depth=2, seed=0, gain=3.0, base_filters=4):
    """A small random model whose BatchNorms are not identities and whose output is not clamped flat.

    Freshly initialised BatchNorm statistics (mean 0, variance 1) make every BN layer an identity
    and a random head drives most outputs into the clamp at 0; random statistics and a head
    centred on 0.5 exercise both.
    """
    keras.utils.set_random_seed(seed)
    return enliven(build_reverse_isp(variant, base_filters=base_filters, depth=depth), seed, gain)


def enliven(model, seed=0, gain=3.0):
    """Random BatchNorm statistics and a head centred on 0.5 in every U-Net of `model` (see `lively_model`)."""
    rng = np.random.default_rng(seed)
    for layer in (inner for unet in model.layers if isinstance(unet, keras.Model) for inner in unet.layers):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 2, c)])
        elif layer.name == "head":
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, gain / np.sqrt(kernel.shape[2]), kernel.shape), np.full_like(bias, 0.5)])
    return model


def generated_frame(h, w, seed=0):
    """Smooth random colours with a blown-out block (so the overexposure mask is on somewhere)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((1, max(h // 8, 2), max(w // 8, 2), 3))
    frame = tf.image.resize(coarse, (h, w)).numpy()[0].astype(np.float32)
    frame[h // 3 : h // 2, w // 4 : w // 2] = 1.0
    return np.clip(frame, 0.0, 1.0)


def receptive_radius(depth: int) -> int:
    """Full-resolution px on each side that one output pixel of the authors' U-Net depends on.

    Interval arithmetic through the net (two 3x3 convs per level, 2x2 pooling, nearest upsample
    + 3x3 conv) gives 2**(depth + 3) - 6, including the worst position on the pooling grid:
    10, 26, 58, 122, 250 for depth 1..5.
    """
    return 2 ** (depth + 3) - 6


def infer_tiled(model, rgb, *, skip_oe: bool = True, jit_compile: bool = False, **tiling):
    """One frame through `TiledInference`, built and called in one step."""
    from revisp_tf.infer.tiled import TiledInference

    return TiledInference(model, skip_oe=skip_oe, jit_compile=jit_compile)(rgb, **tiling)
