"""`runtime.recompute`: U-Net activations recomputed in the backward pass, level by level.

A U-Net keeps every conv, BatchNorm and ReLU output of every level for its backward pass. With
recompute, the forward pass keeps only each level's output (`unet.level_ends`); the backward
pass runs each level's forward again, under a tape, just before it needs that level's
gradients. So a step holds the level outputs plus one level's activations, and runs each
U-Net's forward twice. The inference model is untouched: only the training companion calls
its U-Nets through `RecomputedLevels`, which shares their layers and weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from revisp_tf.models.unet import level_ends


def recompute(fn):
    """`fn(*tensors) -> tensor`, differentiable, its intermediate activations recomputed for the gradient.

    Like `tf.recompute_grad`, except that the recomputation runs in a `keras.StatelessScope`,
    which discards variable assignments: BatchNorm's moving statistics are updated once per
    step (by the forward pass), not twice.
    """

    @tf.custom_gradient
    def wrapped(*xs):
        def grad(dy, variables=None):
            # Recompute only once the output's gradient exists, so the activations live just for this level's backward.
            with tf.control_dependencies([dy]):
                inputs = [tf.identity(x) for x in xs]
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                with keras.StatelessScope():
                    y = fn(*inputs)
            grads = tape.gradient(y, inputs + list(variables or []), output_gradients=dy)
            return grads[: len(xs)], grads[len(xs):]

        return fn(*xs), grad

    return wrapped


def _depends_on(target, stops: list) -> list[int]:
    """Indices of the tensors of `stops` that the symbolic `target` is computed from (searching back to them)."""
    found, seen, todo = set(), set(), [target]
    while todo:
        t = todo.pop()
        hit = next((i for i, s in enumerate(stops) if s is t), None)
        if hit is not None:
            found.add(hit)
        elif id(t) not in seen:
            seen.add(id(t))
            op, node_index, _ = t._keras_history
            todo.extend(op._inbound_nodes[node_index].input_tensors)
    return sorted(found)


class RecomputedLevels(keras.layers.Layer):
    """Calls a `build_unet` net level by level, each level's activations recomputed in the backward pass.

    Same outputs and the same weights as `unet` (its layers are shared); in training the
    gradients equal the plain call's up to float rounding. A training-only wrapper, never
    saved (the inference model calls `unet` itself).

    Args:
      unet: a net made by `build_unet`.
    """

    def __init__(self, unet: keras.Model, **kwargs):
        super().__init__(name=kwargs.pop("name", unet.name), **kwargs)
        self.unet = unet
        ends = level_ends(unet) + [unet.output]
        # Segment i computes ends[i] from the net's input and the earlier level outputs it reads (the skips).
        known = [unet.input]
        history = unet.input._keras_history
        self._segments = []
        for end in ends:
            used = _depends_on(end, known)
            self._segments.append((used, keras.Model([known[i] for i in used], end, name=f"{unet.name}_level{len(self._segments)}")))
            known.append(end)
        # A sub-model taking a model's Input beside intermediate tensors re-wires that Input to a new node
        # (Keras' clone_graph_nodes), after which the model can no longer be saved: point it back.
        unet.input._keras_history = history

    def call(self, x, training=None):
        if not training:
            return self.unet(x, training=training)
        values = [x]
        for used, segment in self._segments:
            run = recompute(lambda *a, segment=segment: segment(list(a), training=True))
            values.append(run(*[values[i] for i in used]))
        return values[-1]

    def compute_output_spec(self, x, training=None):
        return self.unet.compute_output_spec(x)


def with_recomputed_unets(train_model: keras.Model) -> keras.Model:
    """`train_model` (a `training_model`) with each U-Net called through `RecomputedLevels`; all layers shared."""

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.Model):  # a U-Net; the model passes `training` when it runs
            return RecomputedLevels(layer)(args[0])
        return layer(*args, **kwargs)

    return keras.models.clone_model(train_model, clone_function=lambda layer: layer, call_function=call)
