"""The authors' U-Net (SenseBrainTech/overexposure-mask-reverse-ISP, model/nested_UNET.py `U_Net`)."""

from __future__ import annotations

import keras

from revisp_tf.models.layers import Clamp01, CropLike, PadToMultiple

# PyTorch BatchNorm2d defaults (eps 1e-5, running-average momentum 0.1 == Keras momentum 0.9).
# Synchronized across replicas so a multi-GPU run normalises over the global batch, as one GPU would.
_BN = dict(epsilon=1e-5, momentum=0.9, synchronized=True)


def _conv_bn_relu(x, filters: int, name: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _conv_block(x, filters: int, name: str):
    """(3x3 conv + BatchNorm + ReLU) x 2."""
    return _conv_bn_relu(_conv_bn_relu(x, filters, f"{name}a"), filters, f"{name}b")


def _up_block(x, filters: int, name: str):
    """Nearest upsample x2 + 3x3 conv + BatchNorm + ReLU (not a transposed conv)."""
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(x)
    return _conv_bn_relu(x, filters, name)


def build_unet(
    in_channels: int = 4,
    out_channels: int = 3,
    base_filters: int = 64,
    depth: int = 4,
    name: str = "unet",
    clamp: bool = True,
    zero_head: bool = False,
) -> keras.Model:
    """The authors' U-Net: 23 conv layers and 34,527,747 parameters at the defaults.

    Any input size works: the input is padded with the constant 1 up to a multiple of
    2**depth (504 -> 512, as the authors pad 4 px) and the output is cropped back, then
    clamped to [0, 1].

    Args:
      in_channels: 4 for RGB + overexposure mask, 3 for RGB alone.
      out_channels: 3 for a demosaiced RAW.
      base_filters: filters of the first level, doubled at each level (64 in the paper).
      depth: number of 2x2 max-pool levels (4 in the paper).
      name: the model's name (the reverse ISP uses "unet", "unet_oe", "unet_noe").
      clamp: clamp the output to [0, 1] (the authors' net); False for a net predicting a correction.
      zero_head: start the final 1x1 conv at zero, so the net's first output is exactly 0.
    """
    multiple = 2**depth
    filters = [base_filters * 2**i for i in range(depth + 1)]
    inputs = keras.Input((None, None, in_channels), name=f"{name}_input")
    x = PadToMultiple(multiple, value=1.0, name="pad")(inputs)
    skips = []
    for level, f in enumerate(filters):
        if level:
            x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = _conv_block(x, f, f"enc{level + 1}")
        skips.append(x)
    for level in reversed(range(depth)):
        x = _up_block(x, filters[level], f"up{level + 1}")
        x = keras.layers.Concatenate(name=f"skip{level + 1}")([skips[level], x])
        x = _conv_block(x, filters[level], f"dec{level + 1}")
    init = "zeros" if zero_head else "glorot_uniform"
    x = keras.layers.Conv2D(out_channels, 1, kernel_initializer=init, name="head")(x)
    x = CropLike(multiple, name="crop")([x, inputs])
    outputs = Clamp01(name="clamp")(x) if clamp else x
    return keras.Model(inputs, outputs, name=name)


def level_ends(unet: keras.Model) -> list:
    """The symbolic outputs of each level of a `build_unet` net, in call order: encoder levels 1..depth+1,
    then decoder levels depth..1 (the tensors a level-by-level recomputation keeps)."""
    names = {layer.name for layer in unet.layers}
    depth = sum(1 for n in names if n.startswith("pool"))
    ends = [f"enc{k}b_relu" for k in range(1, depth + 2)] + [f"dec{k}b_relu" for k in range(depth, 0, -1)]
    return [unet.get_layer(name).output for name in ends]
