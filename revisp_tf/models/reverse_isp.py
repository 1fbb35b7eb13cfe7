"""The three reverse-ISP pipelines: `baseline`, `single` and `dual` (Overexposure Mask Fusion)."""

from __future__ import annotations

import keras
import numpy as np

from revisp_tf.checks import check_choice
from revisp_tf.choices import GLOBAL_STAGES, VARIANTS
from revisp_tf.global_stage.context import CONTEXT_CHANNELS, frame_context
from revisp_tf.global_stage.layers import (
    LOCAL_CHANNELS,
    Correction,
    FrameGains,
    GlobalCurves,
    LocalContext,
)
from revisp_tf.isp._checks import as_float_tensor, check_channels, check_even
from revisp_tf.isp.bayer import CANONICAL_CFA
from revisp_tf.models.layers import Clamp01, MaskFusion, Mosaic, OverexposureMask
from revisp_tf.models.unet import build_unet

_CORRECTION_CHANNELS = 6  # a U-Net's (gain, offset) correction of the global estimate


def check_variant(variant: str) -> str:
    check_choice("variant", variant, VARIANTS)
    return variant


def build_reverse_isp(
    variant: str = "dual",
    base_filters: int = 64,
    depth: int = 4,
    mask_threshold: float | None = None,
    mask_rule: str = "luma",
    cfa: str = CANONICAL_CFA,
    global_stage: str = "none",
    knots: int = 24,
) -> keras.Model:
    """The inference model: RGB in [0, 1] (N, H, W, 3), H and W even -> packed bayer (N, H/2, W/2, 4).

    - `baseline`: one U-Net maps RGB straight to 4 bayer channels at full resolution,
      averaged over each 2x2 tile to the packed size (the challenge's plain U-Net).
    - `single`: RGB + mask -> U-Net -> demosaiced RAW -> mosaic (the paper's P20 model).
    - `dual`: RGB + mask -> U-Net(OE) and U-Net(NOE), fused with the mask -> mosaic (S7 model).

    The mask is computed inside the graph. Use `training_model` for the intermediate outputs.

    `global_stage` "upi" or "fitted" (the weights are UPI's default camera until the trainer
    fits them) puts the camera-fitted global stage (`revisp_tf.global_stage`) before the U-Nets, which
    then correct its estimate; the model's inputs are then `[rgb, context]`, the context from
    `global_stage.context.frame_context` of the whole frame. `global_stage="none"` is the paper's model.
    The "global" variant is the global stage alone.
    """
    check_variant(variant)
    check_choice("global stage", global_stage, GLOBAL_STAGES)
    if (variant == "global" and global_stage == "none") or (variant == "baseline" and global_stage != "none"):
        raise ValueError(f"variant {variant!r} with global_stage {global_stage!r}: the global variant needs a global "
                         "stage, and the baseline variant takes none")
    if global_stage != "none":
        return _build_with_global_stage(variant, base_filters, depth, mask_threshold, mask_rule, cfa, knots)
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


def _build_with_global_stage(variant, base_filters, depth, mask_threshold, mask_rule, cfa, knots) -> keras.Model:
    """`build_reverse_isp` with a global stage: the U-Nets correct its estimate (zero at step 0)."""
    rgb = keras.Input((None, None, 3), name="rgb")
    context = keras.Input((None, None, CONTEXT_CHANNELS), name="context")
    estimate = GlobalCurves(knots, name="global_curves")(rgb)
    estimate = FrameGains(name="frame_gains")([estimate, context])
    if variant == "global":
        demosaiced = estimate
    else:
        mask = OverexposureMask(mask_threshold, mask_rule, name="mask")(rgb)
        local = LocalContext(name="local_context")(context)
        x = keras.layers.Concatenate(name="unet_input")([rgb, mask, local, estimate])
        in_ch = 4 + LOCAL_CHANNELS + 3

        def corrected(name):
            net = build_unet(in_ch, _CORRECTION_CHANNELS, base_filters, depth, name=name, clamp=False, zero_head=True)
            return Correction(name=f"correction{name[4:]}")([estimate, net(x)])

        if variant == "single":
            demosaiced = corrected("unet")
        else:
            demosaiced = MaskFusion(name="fusion")([mask, corrected("unet_oe"), corrected("unet_noe")])
    demosaiced = Clamp01(name="clamp")(demosaiced)
    bayer = Mosaic(cfa, name="bayer")(demosaiced)
    return keras.Model([rgb, context], bayer, name=f"reverse_isp_{variant}_global")


def model_variant(model: keras.Model) -> str:
    """The variant of a model built by `build_reverse_isp` (also after `.keras` save/load)."""
    names = {layer.name for layer in model.layers}
    if "fusion" in names:
        return "dual"
    if "mask" in names:
        return "single"
    return "global" if "global_curves" in names else "baseline"


def has_global_stage(model: keras.Model) -> bool:
    """True for a model whose inputs are `[rgb, context]` (built with a global stage)."""
    return any(layer.name == "global_curves" for layer in model.layers)


def training_model(model: keras.Model) -> keras.Model:
    """A companion model sharing `model`'s layers, with the intermediate outputs training needs.

    Outputs a dict: `bayer` always; `mask` and `demosaiced` for single and dual; `oe` and
    `noe` (the two nets' unfused outputs) for dual; `global` (the global stage's estimate) for
    models with one. No weights are duplicated.
    """
    variant = model_variant(model)
    outputs = {"bayer": model.output}
    if has_global_stage(model):
        outputs["global"] = model.get_layer("frame_gains").output
    if variant != "baseline":
        outputs["demosaiced"] = model.get_layer("bayer").input
    if variant not in ("baseline", "global"):
        outputs["mask"] = model.get_layer("mask").output
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
    shapes = [tuple(i.shape[1:]) for i in model.inputs]
    if shapes not in ([(None, None, 3)], [(None, None, 3), (None, None, CONTEXT_CHANNELS)]) or model.outputs[0].shape[-1] != 4:
        raise ValueError(f"{path}: expected a reverse-ISP model RGB (N, H, W, 3) -> packed bayer (N, H/2, W/2, 4)")
    return model


def model_inputs(model: keras.Model, rgb: np.ndarray, context: np.ndarray | None = None):
    """What `model` takes for a batch of RGB (N, H, W, 3): the RGB, or `[rgb, context]`.

    Without `context`, each image is taken as a whole frame (`frame_context`); a tile or an AIM
    patch must be given its slice of its frame's context instead.
    """
    if not has_global_stage(model):
        return rgb
    if context is None:
        context = np.stack([frame_context(x) for x in rgb])
    return [rgb, np.asarray(context, np.float32)]


def predict_bayer(model: keras.Model, rgb, batch_size: int = 1, context=None) -> np.ndarray:
    """Runs `model` on validated RGB (and its context, see `model_inputs`); packed bayer as NumPy."""
    check_rgb(rgb)
    x = np.asarray(rgb, np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
        context = None if context is None else np.asarray(context)[None]
    out = model.predict(model_inputs(model, x, context), batch_size=batch_size, verbose=0)
    return out[0] if single else out
