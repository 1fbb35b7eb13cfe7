"""The inference-time form of a trained reverse ISP: the same output (to float rounding) for less work.

Two exact rewrites of every U-Net of the model:

- **BatchNorm folded** into the conv before it: with s = gamma / sqrt(var + eps), the conv's
  kernel becomes kernel * s and its bias (bias - mean) * s + beta. Keras runs BatchNorm as its
  own pass over the activations; the TFLite converter folds it already.
- **Sub-pixel up convs**: a nearest x2 upsample followed by a 3x3 'same' conv equals one 2x2
  conv per output phase on the low-resolution input, then `depth_to_space`. Along each axis,
  output phase 0 takes the taps {k0, k1 + k2} at input offsets {-1, 0}, phase 1 takes
  {k0 + k1, k2} at offsets {0, +1} (`subpixel_kernel`). Per output pixel that is 16
  multiply-adds instead of 36 per channel pair (2.25x fewer), and the upsampled tensor is never
  stored. Resize-conv vs sub-pixel conv: Aitken et al. 2017, arXiv 1707.02937.

`inference_form` walks the model's layers, replaces each nested U-Net sub-model (named in
`UNET_NAMES`, built by `revisp_tf.models.unet.build_unet`) by its rewritten form, built from that
sub-model's own layers and weights, and keeps every other layer as it is (the same objects,
weights shared). The U-Net's structure is read from its graph, not assumed: any input and output
channel counts, with or without the output clamp. A conv is rewritten only when the pattern is
exactly one of the two above (a BatchNorm that is the conv's sole consumer; an upsample whose
sole consumer is a linear 3x3 stride-1 'same' conv); anything else is kept. The trained
`.keras` file is never changed: the form is built after loading, and building it again on an
inference form changes nothing.

Also here: `fusion_parts` cuts a mask-fusion model at its fusion (what tiled inference and the
TFLite skip signatures run to leave out a net), and `conv_flops` counts a model's conv FLOPs.
"""

from __future__ import annotations

import collections
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from revisp_tf.models.layers import Clamp01, MaskFusion, Mosaic
from revisp_tf.models.reverse_isp import load_reverse_isp

UNET_NAMES = ("unet", "unet_oe", "unet_noe")
# Output phases (row, column) of the 2x2 up block, in the channel order `tf.nn.depth_to_space` reads them.
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
# Per axis and phase: which of the 3x3 kernel's three taps add up into each of the two 2x2 taps.
_PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float64)


def fold_batchnorm(kernel, bias, gamma, beta, mean, variance, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of one conv equal to conv(kernel, bias) followed by inference-mode BatchNorm (float64 math)."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    folded_kernel = np.asarray(kernel, np.float64) * scale  # output channels are the kernel's last axis
    folded_bias = (np.asarray(bias, np.float64) - mean) * scale + beta
    return folded_kernel, folded_bias


def subpixel_kernel(kernel) -> np.ndarray:
    """A (3, 3, Cin, Cout) kernel applied after nearest x2 upsampling -> the (2, 2, Cin, 4 Cout) sub-pixel kernel.

    Output channels are phase-major: channel `p * Cout + c` is output channel c of phase p of `_PHASES`.
    """
    k = np.asarray(kernel, np.float64)
    if k.ndim != 4 or k.shape[:2] != (3, 3):
        raise ValueError(f"subpixel_kernel: expected a (3, 3, Cin, Cout) kernel, got shape {k.shape}")
    phases = [np.einsum("iu,jv,uvcd->ijcd", _PHASE_TAPS[a], _PHASE_TAPS[b], k) for a, b in _PHASES]
    return np.concatenate(phases, axis=-1)


@keras.saving.register_keras_serializable(package="revisp_tf")
class SubpixelUpConv(keras.layers.Layer):
    """Nearest x2 upsample + 3x3 'same' conv, computed at low resolution: one 2x2 conv, then depth_to_space.

    Output phase (a, b) is a VALID 2x2 conv of the input zero-padded by 1 - a rows above and a
    below, 1 - b columns left and b right (where the upsampled tensor's 'same' padding would have
    been zero), so each phase is exactly h x w; `depth_to_space` interleaves the four phases.
    (One 2x2 conv with 4 * filters outputs on the input padded by 1 all round computes (h+1)(w+1)
    positions per phase: 27 % more work at 8 x 8, and measured slower on CPU.) Builtin TFLite ops
    only (PAD, CONV_2D, CONCATENATION, DEPTH_TO_SPACE).

    Args:
      filters: output channels (those of the replaced 3x3 conv).

    Example:
      layer = SubpixelUpConv(64); layer.build((None, None, None, 128))
      layer.set_weights([subpixel_kernel(conv_kernel), conv_bias])

    Reference: Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution", arXiv 1707.02937.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)

    def build(self, input_shape):
        cin = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(2, 2, cin, 4 * self.filters), initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        shape = tf.shape(x)
        h, w, f = shape[1], shape[2], self.filters
        kernel = tf.cast(self.kernel, x.dtype)
        phases = [
            tf.nn.conv2d(tf.pad(x, [[0, 0], [1 - a, a], [1 - b, b], [0, 0]]), kernel[..., p * f : (p + 1) * f], 1, "VALID")
            for p, (a, b) in enumerate(_PHASES)
        ]
        up = tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2) + tf.cast(self.bias, x.dtype)
        # An explicit reshape keeps the static channel count through TFLite conversion with dynamic sizes.
        return tf.reshape(up, [-1, 2 * h, 2 * w, f])

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def graph_nodes(model: keras.Model):
    """The call nodes of a functional model in execution order (inputs left out)."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node


def _consumers(model: keras.Model) -> dict[int, list]:
    """id(tensor) -> the nodes reading it (None for a model output)."""
    uses = collections.defaultdict(list)
    for node in graph_nodes(model):
        for t in node.input_tensors:
            uses[id(t)].append(node)
    for t in model.outputs:
        uses[id(t)].append(None)
    return uses


def _is_nearest_x2(layer) -> bool:
    return (
        isinstance(layer, keras.layers.UpSampling2D)
        and tuple(layer.size) == (2, 2)
        and layer.interpolation == "nearest"
        and layer.data_format == "channels_last"
    )


def _is_plain_conv(layer, kernel_size=None) -> bool:
    """A linear, stride-1, undilated, ungrouped channels-last Conv2D ('same' padding when kernel_size is 3)."""
    return (
        type(layer) is keras.layers.Conv2D
        and layer.activation is keras.activations.linear
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and (kernel_size is None or (tuple(layer.kernel_size) == (kernel_size,) * 2 and layer.padding == "same"))
    )


def _is_last_axis_batchnorm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, 3)


def _batchnorm_params(bn) -> tuple:
    c = bn.moving_mean.shape[0]
    gamma = bn.gamma.numpy() if bn.scale else np.ones(c)
    beta = bn.beta.numpy() if bn.center else np.zeros(c)
    return gamma, beta, bn.moving_mean.numpy(), bn.moving_variance.numpy(), bn.epsilon


def _built(layer, input_shape, weights) -> keras.layers.Layer:
    layer.build(input_shape)
    layer.set_weights([np.asarray(w, v.dtype) for w, v in zip(weights, layer.weights)])
    return layer


def inference_unet(unet: keras.Model, *, subpixel: bool = True, fold_batchnorm_layers: bool = True) -> keras.Model:
    """The rewritten form of one U-Net sub-model (see the module docstring); same name, same inputs and outputs."""
    uses = _consumers(unet)

    def sole_user(tensor, test):
        users = uses[id(tensor)]
        return users[0] if len(users) == 1 and users[0] is not None and test(users[0].operation) else None

    new = {}
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in unet.inputs]
    new.update({id(t): x for t, x in zip(unet.inputs, inputs)})
    low_res = {}  # id(upsampled tensor) -> the new graph's tensor before the upsample
    folded = set()  # ids of BatchNorm nodes folded into their conv
    for node in graph_nodes(unet):
        op, (out, *_) = node.operation, node.outputs
        if id(node) in folded:
            continue
        if subpixel and _is_nearest_x2(op) and sole_user(out, lambda c: _is_plain_conv(c, 3)):
            low_res[id(out)] = new[id(node.input_tensors[0])]
            continue
        bn = sole_user(out, _is_last_axis_batchnorm) if fold_batchnorm_layers and _is_plain_conv(op) else None
        source = node.input_tensors[0] if isinstance(op, keras.layers.Conv2D) else None
        if source is not None and (bn is not None or id(source) in low_res):
            kernel = op.kernel.numpy()
            bias = op.bias.numpy() if op.use_bias else np.zeros(op.filters)
            if bn is not None:
                kernel, bias = fold_batchnorm(kernel, bias, *_batchnorm_params(bn.operation))
                folded.add(id(bn))
                out = bn.outputs[0]
            if id(source) in low_res:
                x = low_res.pop(id(source))
                layer = _built(SubpixelUpConv(op.filters, name=op.name, dtype=op.dtype_policy), x.shape,
                               [subpixel_kernel(kernel), bias])
            else:
                x = new[id(source)]
                layer = _built(keras.layers.Conv2D.from_config({**op.get_config(), "use_bias": True}), x.shape,
                               [kernel, bias])
            new[id(out)] = layer(x)
            continue
        args, kwargs = node.arguments.fill_in(new)
        outputs = op(*args, **kwargs)
        new.update({id(t): y for t, y in zip(node.outputs, keras.tree.flatten(outputs))})
    outputs = keras.tree.map_structure(lambda t: new[id(t)], unet._outputs_struct)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=unet.name)


def is_unet(layer) -> bool:
    """True for a nested U-Net sub-model of a reverse-ISP model (by its name, as `build_unet` gives it)."""
    return isinstance(layer, keras.Model) and layer.name in UNET_NAMES


def inference_form(model: keras.Model, *, subpixel: bool = True, fold_batchnorm_layers: bool = True) -> keras.Model:
    """`model` with each U-Net sub-model rewritten (sub-pixel up convs, BatchNorm folded); all else kept as is.

    Args:
      model: a reverse-ISP model (any variant, one or more inputs), e.g. loaded from `.keras`.
      subpixel: rewrite the up blocks (nearest x2 upsample + 3x3 conv) in sub-pixel form.
      fold_batchnorm_layers: fold each BatchNorm into the conv before it.
    """
    swap = lambda layer: (  # noqa: E731
        inference_unet(layer, subpixel=subpixel, fold_batchnorm_layers=fold_batchnorm_layers) if is_unet(layer) else layer
    )
    return keras.models.clone_model(model, clone_function=swap)


def load_inference_model(path) -> keras.Model:
    """The inference form of the `.keras` reverse-ISP model at `path` (what `infer`, `eval` and `export` run)."""
    return inference_form(load_reverse_isp(path))


# Layers through which the fused image may reach the model's output while each packed output pixel
# still depends only on its own 2x2 block of fused pixels (per-pixel ops and the mosaic).
_BLOCK_LOCAL = (
    Clamp01,
    Mosaic,
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.Rescaling,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
)


@dataclasses.dataclass(frozen=True)
class FusionParts:
    """A mask-fusion model cut at its `MaskFusion` (`mask * oe + (1 - mask) * noe`), layers shared.

    mask: the model's inputs -> the fusion's mask.
    oe, noe: the model's inputs -> what the fusion weights by mask / by 1 - mask (everything that
      feeds only that input of the fusion: the U-Net and whatever follows it).
    fuse: the model's inputs + [oe, noe] -> the model's output (the mask path, the fusion and what follows).
    block_local: the fused image reaches the output only through per-pixel layers and the mosaic,
      so each packed output pixel depends on its own 2x2 block alone.

    Where the mask is 0 everywhere an output depends on, `fuse(inputs, zeros, noe(inputs))`
    equals the model exactly (the OE net need not run); where it is 1, the same holds for NOE.
    """

    mask: keras.Model
    oe: keras.Model
    noe: keras.Model
    fuse: keras.Model
    block_local: bool


def fusion_parts(model: keras.Model) -> FusionParts | None:
    """The model cut at its one `MaskFusion` layer, found in the graph; None for a model without one."""
    nodes = [n for n in graph_nodes(model) if isinstance(n.operation, MaskFusion)]
    if not nodes:
        return None
    if len(nodes) > 1:
        raise ValueError(f"{model.name}: {len(nodes)} MaskFusion layers; tiled skipping handles one")
    mask, oe, noe = nodes[0].input_tensors
    inputs = list(model.inputs)
    return FusionParts(
        mask=keras.Model(inputs, mask, name="mask"),
        oe=keras.Model(inputs, oe, name="oe"),
        noe=keras.Model(inputs, noe, name="noe"),
        fuse=keras.Model([*inputs, oe, noe], model.outputs[0], name="fuse"),
        block_local=_reaches_output_locally(model, nodes[0].outputs[0]),
    )


def _reaches_output_locally(model: keras.Model, tensor) -> bool:
    """True if every path from `tensor` to the model's outputs goes through `_BLOCK_LOCAL` layers only."""
    uses = _consumers(model)
    todo, seen = [tensor], set()
    while todo:
        t = todo.pop()
        for node in uses[id(t)]:
            if node is None or id(node) in seen:
                continue
            if not isinstance(node.operation, _BLOCK_LOCAL):
                return False
            seen.add(id(node))
            todo.extend(node.outputs)
    return True


def conv_flops(model: keras.Model, height: int, width: int) -> int:
    """FLOPs (2 per multiply-add) of the Conv2D ops of one (1, height, width) pass, counted in the traced graph.

    Each Conv2D op counts 2 * kh * kw * Cin * (output elements), as the TF profiler does.
    """
    specs = [tf.TensorSpec((1, height, width, t.shape[-1]), t.dtype) for t in model.inputs]
    fn = tf.function(lambda *xs: model(xs[0] if len(xs) == 1 else list(xs), training=False))
    total = 0
    for op in fn.get_concrete_function(*specs).graph.get_operations():
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            total += 2 * kh * kw * cin * int(np.prod(op.outputs[0].shape.as_list()))
    return total
