"""The LiteRT side of an exported model, in NumPy only (no TensorFlow), shared by the library's export
check and `mobile/run_litert.py` (which runs on x86 and on ARM64).

The model contract (mobile/README.md): signature `reverse_isp`, input `rgb` float32 (1, H, W, 3)
in [0, 1] (and `context` for a global-stage model), output `bayer` float32 (1, H/2, W/2, 4)
packed RGGB in model units. A mask-fusion (dual) model also carries `skip_mask` (inputs ->
`mask`), `skip_oe` and `skip_noe` (inputs -> `oe` / `noe`, what the fusion weights by mask /
1 - mask) and `skip_fuse` (inputs, oe, noe -> bayer), so a runner can skip a net the mask gives
no weight: where the mask is all 0, `skip_fuse(inputs, zeros, skip_noe(inputs))` equals
`reverse_isp(inputs)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from revisp_tf.global_stage.context import frame_context
from revisp_tf.io.stderr import native_stderr

SIGNATURE, INPUT, CONTEXT, OUTPUT = "reverse_isp", "rgb", "context", "bayer"
# The skip-a-net signatures of a mask-fusion model. Named to sort after "reverse_isp", which LiteRT then
# keeps as subgraph 0 (the one index-based calls such as get_input_details() address).
MASK, OE, NOE = "mask", "oe", "noe"  # tensor names
SKIP = {MASK: "skip_mask", OE: "skip_oe", NOE: "skip_noe", "fuse": "skip_fuse"}  # signature names
BUILTIN_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def tflite_ops(model_bytes: bytes) -> tuple[str, ...]:
    """Sorted operator names of a .tflite flatbuffer (custom ops by their custom code, e.g. FlexConv2D)."""
    m = schema.Model.GetRootAs(model_bytes, 0)
    ops = set()
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ops.add(code.CustomCode().decode() if builtin == schema.BuiltinOperator.CUSTOM else BUILTIN_OP_NAMES[builtin])
    return tuple(sorted(ops))


def new_interpreter(**kwargs) -> Interpreter:
    """`Interpreter(**kwargs)` with its tensors allocated, without LiteRT's "INFO: Created ... XNNPACK delegate" line."""
    with native_stderr(("INFO: Created TensorFlow Lite XNNPACK delegate",)):
        interpreter = Interpreter(**kwargs)
        interpreter.allocate_tensors()
    return interpreter


def load(model_path: Path, num_threads: int) -> Interpreter:
    """The interpreter (XNNPACK delegate applied by default), checked against the model contract."""
    interpreter = new_interpreter(model_path=str(model_path), num_threads=num_threads)
    signatures = interpreter.get_signature_list()
    got = signatures.get(SIGNATURE, {})
    if sorted(got.get("inputs", ())) not in ([INPUT], [CONTEXT, INPUT]) or got.get("outputs") != [OUTPUT]:
        raise ValueError(f"{model_path}: expected signature {SIGNATURE!r} with inputs {INPUT!r} [and {CONTEXT!r}] "
                         f"and output {OUTPUT!r}, got {signatures}")
    return interpreter


def takes_context(interpreter: Interpreter) -> bool:
    """True for a global-stage model (a second input `context`, computed per frame)."""
    return CONTEXT in interpreter.get_signature_list()[SIGNATURE]["inputs"]


def can_skip(interpreter: Interpreter) -> bool:
    """True if the model carries the skip_* signatures of a mask-fusion model."""
    return set(SKIP.values()) <= set(interpreter.get_signature_list())


def input_shape(interpreter: Interpreter) -> tuple[int | None, int | None]:
    """(H, W) of a static model, (None, None) of a dynamic one."""
    sig = interpreter.get_signature_runner(SIGNATURE).get_input_details()[INPUT]["shape_signature"]
    return tuple(None if s < 0 else int(s) for s in sig[1:3])


def check_image(interpreter: Interpreter, rgb: np.ndarray) -> None:
    """ValueError unless the image fits the model: even sides, and a static model's size."""
    h, w = rgb.shape[:2]
    fixed = input_shape(interpreter)
    if fixed != (None, None) and fixed != (h, w):
        raise ValueError(f"image {h}x{w}: this static model takes {fixed[0]}x{fixed[1]}")
    if h % 2 or w % 2:
        raise ValueError(f"image {h}x{w}: expected even height and width (whole 2x2 CFA tiles)")


def _inputs(interpreter, rgb: np.ndarray, context: np.ndarray | None) -> dict:
    x = {INPUT: np.asarray(rgb, np.float32)[None]}
    if takes_context(interpreter):
        if context is None:
            context = frame_context(rgb)
        x[CONTEXT] = np.asarray(context, np.float32)[None]
    return x


def run(interpreter: Interpreter, rgb: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) RGB [+ (H, W, CONTEXT_CHANNELS) context; default: the image is the whole frame] -> (H/2, W/2, 4) packed RGGB."""
    check_image(interpreter, rgb)
    return interpreter.get_signature_runner(SIGNATURE)(**_inputs(interpreter, rgb, context))[OUTPUT][0]


def nets_needed(mask: np.ndarray) -> tuple[str, ...]:
    """The nets the fusion gives weight somewhere in `mask`: ("oe", "noe"), ("oe",) or ("noe",)."""
    return tuple(name for name, needed in ((OE, np.any(mask != 0)), (NOE, np.any(mask != 1))) if needed)


def run_skipping(interpreter: Interpreter, rgb: np.ndarray, context: np.ndarray | None = None,
                 region=(slice(None), slice(None))) -> tuple[np.ndarray, tuple[str, ...]]:
    """Like `run`, through mask -> the nets the mask gives weight in `region` (of the mask) -> fuse; (bayer, nets run).

    `region` (rows, cols of the full-resolution tile) is the part of the output that is used; a
    net the mask gives no weight there is skipped and fed as zeros to the fusion.
    """
    check_image(interpreter, rgb)
    x = _inputs(interpreter, rgb, context)
    mask = interpreter.get_signature_runner(SKIP[MASK])(**x)[MASK][0, ..., 0]
    ran = nets_needed(mask[region])
    if ran == (OE, NOE):
        return interpreter.get_signature_runner(SIGNATURE)(**x)[OUTPUT][0], ran
    (name,) = ran
    present = interpreter.get_signature_runner(SKIP[name])(**x)[name]
    branches = {OE: np.zeros_like(present), NOE: np.zeros_like(present), name: present}  # 0 is weighted by 0
    return interpreter.get_signature_runner(SKIP["fuse"])(**x, **branches)[OUTPUT][0], ran
