"""The whole inference graph (mask, U-Net(s), fusion, mosaic) as one builtin-ops-only TFLite model.

Contract (mobile/README.md): signature `reverse_isp`, input `rgb` float32 (1, H, W, 3) in [0, 1]
(and `context` for a global-stage model), output `bayer` float32 (1, H/2, W/2, 4) packed RGGB in
model units. A mask-fusion (dual) model also gets the signatures `skip_mask` (inputs -> `mask`),
`skip_oe` and `skip_noe` (inputs -> `oe` / `noe`, what the fusion weights by mask / 1 - mask) and
`skip_fuse` (inputs, oe, noe -> bayer), so a runner can skip a net the mask gives no weight
(`revisp_tf.models.inference_form.fusion_parts`): where the mask is all 0, `skip_fuse(inputs,
zeros, skip_noe(inputs))` equals `reverse_isp(inputs)`. The signatures share the weights (the file
grows by about 1 %); their names sort after `reverse_isp`, which stays subgraph 0. int8 files
have `reverse_isp` only (calibration data is per signature).

How it converts (each step avoids a known conversion trap):
- The model is exported with `keras.export.ExportArchive` (named endpoint) and converted with
  `TFLiteConverter.from_saved_model`, builtin ops only: no Flex ops can sneak in.
- Keras `UpSampling2D(nearest)` is `tf.repeat`, whose output loses its channel count under
  dynamic sizes, so conversion fails with "Conv2D needs Flex". The export converts a clone in
  which each such layer is an equal nearest resize with an explicit reshape (weights shared,
  not copied); `PadToMultiple` already reshapes explicitly.
- `quantize`: "none" = float32; "fp16" = float16 weights (dequantized to float32 when LiteRT's
  CPU interpreter loads them, on x86 and on ARM64); "int8" = full-integer quantization (int8
  weights and activations, float32 input and output kept) calibrated on a representative
  dataset, except the overexposure mask path, which stays float32 (selective quantization) so
  the mask is exactly the float model's, and so do, by default, each U-Net's head with every op
  after it (the dual's fusion included) and a global stage (`default_float_parts`); `float_parts`
  chooses what stays float32 (FLOAT_PARTS). A plain dual net is calibrated on the images and on
  copies re-exposed by CALIBRATION_STOPS (`exposure_bracket`, `default_calibration_stops`), so
  the ranges cover exposures the few calibration frames lack. Calibration samples are fed by
  input name (the converted graph orders inputs by name, "context" first), a global-stage
  model's with each image's frame context. Full-integer is the variant mobile int8 kernels
  (XNNPACK QS8, NPU delegates) accelerate; dynamic-range int8 keeps float activations.
- After writing (atomically), the file is loaded in the LiteRT interpreter and compared with
  Keras on sample inputs.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from revisp_tf.choices import FLOAT_PARTS, QUANTIZE_MODES
from revisp_tf.export.calibration import (
    CALIBRATION_STOPS,
    as_calibration_images,
    calibration_images,
    check_size,
    default_calibration_stops,
    exposure_bracket,
)
from revisp_tf.export.litert import (
    BUILTIN_OP_NAMES,
    CONTEXT,
    INPUT,
    MASK,
    NOE,
    new_interpreter,
    OE,
    OUTPUT,
    SIGNATURE,
    SKIP,
    run,
    run_skipping,
    tflite_ops,
)
from revisp_tf.global_stage.context import CONTEXT_CHANNELS, frame_context
from revisp_tf.io.atomic import atomic_write
from revisp_tf.models.inference_form import fusion_parts
from revisp_tf.models.reverse_isp import has_global_stage, model_inputs

# Ops an int8 export keeps in float32: the mask's luma (MUL, SUM) and threshold (GREATER_EQUAL),
# and the fusion's products. An 8-bit luma flips the mask of pixels within ~1/255 of Y = 0.978,
# which hands them to the other net: max error 0.59 instead of 0.012 on a random dual model.
_FLOAT_OPS = ("MUL", "SUM", "GREATER_EQUAL")
_MOVES = {"PACK", "RESHAPE", "STRIDED_SLICE", "CONCATENATION"}  # ops that only move values (_float_nodes)


@keras.saving.register_keras_serializable(package="revisp_tf")
class NearestUpsample(keras.layers.Layer):
    """Nearest-neighbour upsampling by an integer factor that keeps its channel count through TFLite conversion.

    Same values as `keras.layers.UpSampling2D(size, interpolation="nearest")`; converts to one
    RESIZE_NEAREST_NEIGHBOR op with static or dynamic height and width.

    Args:
      size: (height factor, width factor).
    """

    def __init__(self, size=(2, 2), **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(int(s) for s in size)

    def call(self, x):
        shape = tf.shape(x)
        h, w = shape[1] * self.size[0], shape[2] * self.size[1]
        y = tf.image.resize(x, [h, w], method="nearest")
        return tf.reshape(y, [-1, h, w, x.shape[-1]])

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_tflite` wrote and how closely the TFLite model follows Keras."""

    path: Path
    quantize: str
    input_shape: tuple
    size_bytes: int
    ops: tuple[str, ...]
    max_abs_error: float
    mean_abs_error: float
    checks: tuple[tuple[tuple[int, int], float, float], ...]  # ((H, W), max abs, mean abs) per check size
    convert_seconds: float
    signatures: tuple[str, ...] = (SIGNATURE,)
    skip_max_abs_error: float | None = None  # the mask/oe/noe/fuse path, nets skipped where the mask allows

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        shape = "x".join("?" if s is None else str(s) for s in self.input_shape)
        out = [
            f"wrote {self.path} ({self.size_bytes / 1e6:.2f} MB, {self.quantize}, converted in {self.convert_seconds:.1f} s)",
            f"signature {SIGNATURE}: {INPUT} float32 {shape} -> {OUTPUT} float32 packed RGGB",
            f"ops ({len(self.ops)}, builtin only): {', '.join(self.ops)}",
        ]
        for (h, w), mx, mean in self.checks:
            out.append(f"LiteRT vs Keras at {h}x{w}: max abs error {mx:.3g}, mean abs error {mean:.3g}")
        if self.skip_max_abs_error is not None:
            out.append(f"signatures {', '.join(self.signatures[1:])} (skip a net the mask gives no weight): "
                       f"max abs error {self.skip_max_abs_error:.3g} against Keras")
        return out


def convertible(model: keras.Model) -> keras.Model:
    """A clone of `model` sharing its weights, with `UpSampling2D(nearest)` replaced by `NearestUpsample`."""

    def swap(layer):
        if isinstance(layer, keras.layers.UpSampling2D):
            if layer.interpolation != "nearest" or layer.data_format != "channels_last":
                raise ValueError(f"{layer.name}: only channels-last nearest upsampling converts, got {layer.interpolation}")
            return NearestUpsample(layer.size, name=layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=swap, recursive=True)


def _saved_model(model: keras.Model, directory: str, size, skip_signatures: bool) -> tuple[str, ...]:
    """Writes the SavedModel the converter reads; returns its signature names (see the module docstring)."""
    hw = tuple(size) if size else (None, None)
    spec = lambda name, channels: tf.TensorSpec((1, *hw, channels), tf.float32, name=name)  # noqa: E731
    # A global-stage model also takes its frame context (computed once per frame, on the host).
    inputs = [spec(INPUT, 3)] + ([spec(CONTEXT, CONTEXT_CHANNELS)] if has_global_stage(model) else [])
    call = lambda net, xs: net(xs[0] if len(xs) == 1 else list(xs), training=False)  # noqa: E731
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, lambda *xs: {OUTPUT: call(model, xs)}, input_signature=inputs)
    parts = fusion_parts(model) if skip_signatures else None
    if parts is None:
        archive.write_out(directory, verbose=False)
        return (SIGNATURE,)
    branches = [spec(OE, parts.oe.outputs[0].shape[-1]), spec(NOE, parts.noe.outputs[0].shape[-1])]
    archive.add_endpoint(SKIP[MASK], lambda *xs: {MASK: call(parts.mask, xs)}, input_signature=inputs)
    archive.add_endpoint(SKIP[OE], lambda *xs: {OE: call(parts.oe, xs)}, input_signature=inputs)
    archive.add_endpoint(SKIP[NOE], lambda *xs: {NOE: call(parts.noe, xs)}, input_signature=inputs)
    archive.add_endpoint(SKIP["fuse"], lambda *xs: {OUTPUT: call(parts.fuse, xs)}, input_signature=inputs + branches)
    archive.write_out(directory, verbose=False)
    return (SIGNATURE, *SKIP.values())


def _float_nodes(float_model: bytes, parts) -> list[str]:
    """Output tensor names of the ops of `float_model` that belong to the layers of FLOAT_PARTS[parts]."""
    interpreter = new_interpreter(model_content=float_model)
    details = interpreter.get_tensor_details()
    ops = interpreter._get_ops_details()  # in execution order
    # a path component that is the layer's name, or Keras' "<name>_<n>" of a called layer
    layers_of = lambda i: {re.sub(r"_\d+$", "", c) for piece in details[i]["name"].split(";") for c in piece.split("/")}  # noqa: E731
    kept = set()
    for part in parts:
        found = {i for op in ops for i in op["outputs"] if layers_of(i) & set(FLOAT_PARTS[part])}
        if not found:
            raise ValueError(f"float_parts: this model has no {part!r} part (no layer named {', '.join(FLOAT_PARTS[part])})")
        kept |= found
    # An op that only moves values of kept tensors is kept too: the mosaic's last PACK is named after the
    # graph's output, not its layer, and quantized it would put the float output back on 256 levels.
    produced = {i for op in ops for i in op["outputs"]}
    for op in ops:
        inputs = [i for i in op["inputs"] if i in produced]
        if op["op_name"] in _MOVES and inputs and set(inputs) <= kept:
            kept.update(op["outputs"])
    return [details[i]["name"] for i in sorted(kept)]


def _convert(saved_dir: str, signatures, quantize: str, representative: list[np.ndarray], with_context: bool = False,
             contexts: list[np.ndarray] | None = None, float_parts=()) -> bytes:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_dir, signature_keys=list(signatures))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize != "int8":
        return converter.convert()
    # Samples keyed by input name: a list would be fed in the converted graph's input order, which
    # sorts by name ("context" before "rgb"), not in the signature's order.
    if with_context:
        contexts = contexts if contexts is not None else [None] * len(representative)
        dataset = lambda: ({INPUT: img[None], CONTEXT: (frame_context(img) if c is None else c)[None]}  # noqa: E731
                           for img, c in zip(representative, contexts))
    else:
        dataset = lambda: ({INPUT: img[None]} for img in representative)  # noqa: E731
    converter.representative_dataset = dataset
    # Selective quantization: the mask path stays float32 (see _FLOAT_OPS), and the float_parts.
    nodes = None
    if float_parts:
        plain = tf.lite.TFLiteConverter.from_saved_model(saved_dir, signature_keys=list(signatures))
        plain.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        nodes = _float_nodes(plain.convert(), float_parts)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(_FLOAT_OPS), denylisted_nodes=nodes)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset, debug_options=options)
    return debugger.get_nondebug_quantized_model()


def default_float_parts(model: keras.Model) -> tuple[str, ...]:
    """What an int8 export keeps in float32 unless told: the head, and a global stage where there is one.

    Measured on real P9 pairs (mobile/README.md, "int8 in dB"): quantized, the global stage cost up to
    3.3 dB and the heads of plain single nets up to 1.2 dB; in float32 neither costs speed that
    matters (per-pixel arithmetic beside the U-Net's convolutions).
    """
    return ("global", "head") if has_global_stage(model) else ("head",)


def export_tflite(
    model: keras.Model,
    out_path,
    *,
    quantize: str = "none",
    size=(504, 504),
    representative_data: Iterable | None = None,
    representative_contexts: Iterable | None = None,
    check_data: Iterable | None = None,
    check_sizes=((256, 384),),
    num_threads: int = 2,
    float_parts=None,
    calibration_stops=None,
) -> ExportReport:
    """Converts `model` (RGB -> packed bayer) to one TFLite file and checks it against Keras.

    Args:
      model: a model from `build_reverse_isp` (any variant), BatchNorm run in inference mode.
      out_path: the .tflite file, written to a temporary name and renamed.
      quantize: "none" (float32), "fp16" (float16 weights) or "int8" (full-integer, float I/O).
      size: (H, W) of the static input, or None for dynamic height and width (batch is 1).
      representative_data: int8 calibration images (arrays or image paths, (H, W, 3) in [0, 1]);
        default `calibration_images()`. Real photos of the target camera calibrate best.
      representative_contexts: for a global-stage model, each calibration image's (H, W, CONTEXT_CHANNELS) frame
        context (the slice of its frame's, `global_stage.context.context_window`); default each image's own
        `frame_context` (the image taken as a whole frame).
      check_data: images compared between LiteRT and Keras; default the first two calibration images.
      check_sizes: for a dynamic model, extra (H, W) centre crops the check also runs at.
      num_threads: LiteRT threads for the check.
      float_parts: int8 only: parts kept in float32 besides the mask, from FLOAT_PARTS ("global", "head", "top");
        default `default_float_parts(model)`.
      calibration_stops: int8 only: the calibration also sees each image re-exposed by these stops
        (`exposure_bracket`); default `default_calibration_stops(model)`.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize={quantize!r}: expected one of {', '.join(QUANTIZE_MODES)}")
    if float_parts is None:
        float_parts = default_float_parts(model) if quantize == "int8" else ()
    float_parts = tuple(float_parts)
    if set(float_parts) - set(FLOAT_PARTS) or (float_parts and quantize != "int8"):
        raise ValueError(f"float_parts={float_parts}: expected int8 and some of {', '.join(FLOAT_PARTS)}")
    if calibration_stops and quantize != "int8":
        raise ValueError(f"calibration_stops={calibration_stops}: only int8 calibrates")
    size = check_size(size)
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {out_path}: directory {out_path.parent} does not exist")
    fit = size or (504, 504)
    representative = as_calibration_images(representative_data, size) if representative_data is not None else calibration_images(fit)
    contexts = None
    if representative_contexts is not None:
        contexts = [np.asarray(c, np.float32) for c in representative_contexts]
        if len(contexts) != len(representative) or any(c.shape != (*r.shape[:2], CONTEXT_CHANNELS)
                                                       for c, r in zip(contexts, representative)):
            raise ValueError(f"representative_contexts: expected one (H, W, {CONTEXT_CHANNELS}) context per calibration image")
    checks = as_calibration_images(check_data, size) if check_data is not None else representative[:2]
    stops = () if quantize != "int8" else tuple(default_calibration_stops(model) if calibration_stops is None else calibration_stops)
    if stops and contexts is not None:
        raise ValueError("calibration_stops with representative_contexts: a re-exposed image needs its own frame's "
                         "context; pass the re-exposed images and their contexts instead")
    if stops:
        representative = exposure_bracket(representative, stops)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        signatures = _saved_model(convertible(model), tmp, size, skip_signatures=quantize != "int8")
        flatbuffer = _convert(tmp, signatures, quantize, representative if quantize == "int8" else [],
                              has_global_stage(model), contexts, float_parts)
    seconds = time.perf_counter() - start
    ops = tflite_ops(flatbuffer)
    custom = [op for op in ops if op not in BUILTIN_OP_NAMES.values()]
    if custom:
        raise ValueError(f"{out_path}: conversion produced non-builtin ops {custom}; the model must convert with builtins only")
    with atomic_write(out_path) as tmp_path:
        tmp_path.write_bytes(flatbuffer)
    results = _compare(model, out_path, checks, () if size else check_sizes, num_threads)
    errors = np.concatenate([r[3] for r in results])
    skip_error = None
    if len(signatures) > 1:
        interpreter = new_interpreter(model_path=str(out_path), num_threads=num_threads)
        skip_error = max(
            float(np.abs(run_skipping(interpreter, x)[0] - model.predict_on_batch(model_inputs(model, x[None]))[0]).max())
            for x in checks
        )
    return ExportReport(
        path=out_path,
        quantize=quantize,
        input_shape=(1, *size, 3) if size else (1, None, None, 3),
        size_bytes=out_path.stat().st_size,
        ops=ops,
        max_abs_error=float(errors.max()),
        mean_abs_error=float(errors.mean()),
        checks=tuple((hw, mx, mean) for hw, mx, mean, _ in results),
        convert_seconds=seconds,
        signatures=signatures,
        skip_max_abs_error=skip_error,
    )


def _centre_crop(img: np.ndarray, h: int, w: int) -> np.ndarray | None:
    if img.shape[0] < h or img.shape[1] < w:
        return None
    y0, x0 = (img.shape[0] - h) // 4 * 2, (img.shape[1] - w) // 4 * 2  # even offsets keep the CFA phase
    return img[y0 : y0 + h, x0 : x0 + w]


def _compare(model, path: Path, images, extra_sizes, num_threads: int):
    """Per input size: ((H, W), max abs error, mean abs error, all abs errors) of LiteRT against Keras."""
    groups: dict[tuple[int, int], list[np.ndarray]] = {}
    for img in images:
        groups.setdefault(img.shape[:2], []).append(img)
    for h, w in map(check_size, extra_sizes):
        crops = [c for c in (_centre_crop(img, h, w) for img in images) if c is not None]
        if not crops:
            raise ValueError(f"check size {h}x{w}: larger than every check image")
        groups.setdefault((h, w), []).extend(crops)
    interpreter = new_interpreter(model_path=str(path), num_threads=num_threads)
    results = []
    for (h, w), batch in groups.items():
        err = np.concatenate(
            [np.abs(run(interpreter, x) - model.predict_on_batch(model_inputs(model, x[None]))[0]).ravel() for x in batch]
        )
        results.append(((int(h), int(w)), float(err.max()), float(err.mean()), err))
    return results


def export_model(load_model, out_path, *, variant=None, quantize: str = "none", size=(504, 504), calibration_dir=None,
                 float_parts=(), exposure_bracket=None, model_name: str = "the model") -> ExportReport:
    """`revisp-tf export`: its flags checked (ValueError naming the flag), then `export_tflite`.

    `load_model()` gives the model, called once the flags are valid. `float_parts`: parts from
    FLOAT_PARTS, or ("none",) for none; empty: the model's default. `exposure_bracket`: True/False
    for CALIBRATION_STOPS / none; None: the model's default. `calibration_dir`: a folder of images
    of the target camera (every JPEG/PNG under it).
    """
    from revisp_tf.data.scan import scan_rgb
    from revisp_tf.models import model_variant

    float_parts = tuple(float_parts)
    if float_parts and quantize != "int8":
        raise ValueError(f"--float-parts: only with --quantize int8 (got --quantize {quantize})")
    if exposure_bracket is not None and quantize != "int8":
        raise ValueError(f"--{'' if exposure_bracket else 'no-'}exposure-bracket: only with --quantize int8 (got --quantize {quantize})")
    if "none" in float_parts and len(float_parts) > 1:
        raise ValueError(f"--float-parts: none cannot be combined with {', '.join(p for p in float_parts if p != 'none')}")
    representative = [e.rgb for e in scan_rgb(calibration_dir)] if calibration_dir else None
    model = load_model()
    if variant and model_variant(model) != variant:
        raise ValueError(f"{model_name}: is a {model_variant(model)} model, not {variant}")
    parts = None if not float_parts else () if float_parts == ("none",) else float_parts  # None: the default
    stops = None if exposure_bracket is None else CALIBRATION_STOPS if exposure_bracket else ()  # None: the default
    return export_tflite(model, out_path, quantize=quantize, size=size, representative_data=representative,
                         float_parts=parts, calibration_stops=stops)
