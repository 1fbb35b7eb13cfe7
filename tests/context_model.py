"""A dual model with a second input, 'context', shaped like the global-stage models, for inference tests.

rgb + context -> mask; a 1x1 conv of the context (a non-U-Net layer with weights) scales the RGB
into an estimate; both U-Nets see (rgb, mask, context) and their unclamped output is added to
the estimate, so each branch is a U-Net plus a layer after it; fusion, clamp, mosaic.
"""

import keras

from revisp_tf.models.layers import Clamp01, MaskFusion, Mosaic, OverexposureMask
from revisp_tf.models.unet import build_unet
from tests.lively import enliven

CONTEXT_CHANNELS = 5


def context_dual_model(depth=2, base_filters=4, seed=0):
    keras.utils.set_random_seed(seed)
    rgb = keras.Input((None, None, 3), name="rgb")
    context = keras.Input((None, None, CONTEXT_CHANNELS), name="context")
    mask = OverexposureMask(name="mask")(rgb)
    gain = keras.layers.Conv2D(3, 1, name="context_gain")(context)
    estimate = keras.layers.Multiply(name="estimate")([rgb, gain])
    x = keras.layers.Concatenate(name="net_input")([rgb, mask, context])
    branches = []
    for name in ("unet_oe", "unet_noe"):
        net = build_unet(4 + CONTEXT_CHANNELS, 3, base_filters, depth, name=name, clamp=False)(x)
        branches.append(keras.layers.Add(name=f"{name}_plus_estimate")([estimate, net]))
    fused = MaskFusion(name="fusion")([mask, *branches])
    bayer = Mosaic(name="bayer")(Clamp01(name="clamp")(fused))
    return enliven(keras.Model([rgb, context], bayer, name="reverse_isp_context"), seed)
