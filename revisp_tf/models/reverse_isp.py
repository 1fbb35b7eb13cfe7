"""The three reverse-ISP pipelines: `baseline`, `single` and `dual` (Overexposure Mask Fusion)."""

from __future__ import annotations

import keras
import numpy as np

from revisp_tf.isp._checks import as_float_tensor, check_channels, check_even
from revisp_tf.isp.bayer import CANONICAL_CFA
from revisp_tf.models.layers import MaskFusion, Mosaic, OverexposureMask
from revisp_tf.models.unet import build_unet

VARIANTS = ("baseline", "single", "dual")


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return variant


def build_reverse_isp(
    variant: str = "dual",
    base_filters: int = 64,
    depth: int = 4,
    mask_threshold: float | None = None,
    mask_rule: str = "luma",
    cfa: str = CANONICAL_CFA,
) -> keras.Model:
    """The inference model: RGB in [0, 1] (N, H, W, 3), H and W even -> packed bayer (N, H/2, W/2, 4).

    - `baseline`: one U-Net maps RGB straight to 4 bayer channels at full resolution,
      averaged over each 2x2 tile to the packed size (the challenge's plain U-Net).
    - `single`: RGB + mask -> U-Net -> demosaiced RAW -> mosaic (the paper's P20 model).
    - `dual`: RGB + mask -> U-Net(OE) and U-Net(NOE), fused with the mask -> mosaic (S7 model).

    The mask is computed inside the graph. Use `training_model` for the intermediate outputs.
    """
    check_variant(variant)
    rgb = keras.Input((None, None, 3), name="rgb")
    if variant == "baseline":
        tiles = build_unet(3, 4, base_filters, depth, name="unet")(rgb)
        bayer = keras.layers.AveragePooling2D(2, name="bayer")(tiles)
        return keras.Model(rgb, bayer, name="reverse_isp_baseline")
    mask = OverexposureMask(mask_threshold, mask_rule, name="mask")(rgb)
    x = keras.layers.Concatenate(name="rgb_mask")([rgb, mask])
    if variant == "single":
        demosaiced = build_unet(4, 3, base_filters, depth, name="unet")(x)
    else:
        oe = build_unet(4, 3, base_filters, depth, name="unet_oe")(x)
        noe = build_unet(4, 3, base_filters, depth, name="unet_noe")(x)
        demosaiced = MaskFusion(name="fusion")([mask, oe, noe])
    bayer = Mosaic(cfa, name="bayer")(demosaiced)
    return keras.Model(rgb, bayer, name=f"reverse_isp_{variant}")


def model_variant(model: keras.Model) -> str:
    """The variant of a model built by `build_reverse_isp` (also after `.keras` save/load)."""
    names = {layer.name for layer in model.layers}
    if "fusion" in names:
        return "dual"
    return "single" if "mask" in names else "baseline"


def training_model(model: keras.Model) -> keras.Model:
    """A companion model sharing `model`'s layers, with the intermediate outputs training needs.

    Outputs a dict: `bayer` always; `mask` and `demosaiced` for single and dual; `oe` and
    `noe` (the two nets' unfused outputs) for dual. No weights are duplicated.
    """
    variant = model_variant(model)
    outputs = {"bayer": model.output}
    if variant != "baseline":
        outputs["mask"] = model.get_layer("mask").output
        outputs["demosaiced"] = model.get_layer("bayer").input
    if variant == "dual":
        _, outputs["oe"], outputs["noe"] = model.get_layer("fusion").input
    return keras.Model(model.input, outputs, name=f"{model.name}_training")


def trainable_parameter_count(model: keras.Model) -> int:
    """Trainable parameters (BatchNorm running statistics excluded, as PyTorch counts)."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def check_rgb(rgb, name: str = "rgb") -> None:
    """Validates a model input: float RGB in [0, 1], (H, W, 3) or (N, H, W, 3), H and W even."""
    x, _ = as_float_tensor(rgb, name)
    check_channels(x, 3, name)
    check_even(x, name)


def load_reverse_isp(path) -> keras.Model:
    """Loads a `.keras` reverse-ISP model, or raises one ValueError naming the file."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model file not found")
    try:
        model = keras.models.load_model(path)
    except Exception as e:  # Keras raises many types for a file that is not a model
        raise ValueError(f"{path}: not a readable Keras model (.keras): {e.__class__.__name__}") from None
    if len(model.inputs) != 1 or model.inputs[0].shape[-1] != 3 or model.outputs[0].shape[-1] != 4:
        raise ValueError(f"{path}: expected a reverse-ISP model RGB (N, H, W, 3) -> packed bayer (N, H/2, W/2, 4)")
    return model


def predict_bayer(model: keras.Model, rgb, batch_size: int = 1) -> np.ndarray:
    """Runs `model` on validated RGB; returns the packed bayer as NumPy (batched like the input)."""
    check_rgb(rgb)
    x = np.asarray(rgb, np.float32)
    out = model.predict(x[None] if x.ndim == 3 else x, batch_size=batch_size, verbose=0)
    return out[0] if x.ndim == 3 else out
