"""`runtime.sequential_nets`: the dual model's two nets stepped one after the other within a step.

The joint step runs both U-Nets forward and keeps both nets' activations for one backward
pass. Where each net's loss reads only its own output and the mask (`objectives.net_objectives`),
the gradient of the sum is the sum of each term's gradient, and each term's gradient reaches
only its own net and what the nets share (a global stage). So the step can run forward and
backward of the OE net, then of the NOE net, add the gradients and make ONE optimizer update:
the same gradients up to float rounding, with one net's activations in memory at a time.

- BatchNorm: each net runs forward once per step, as in the joint step, so its moving
  statistics get the same single update. Shared layers run once per net: the global stage
  has no state that training updates.
- Mixed precision: both nets' losses are scaled by the same loss scale (it only changes in
  `apply_gradients`), and the one update checks all gradients together, as the joint step does.
- tf.distribute: per-replica losses are summed and divided by the global batch, as in
  `trainer.replica_gradients`; the one `apply_gradients` all-reduces.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from revisp_tf.train.trainer import batch_inputs


def net_branches(train_model: keras.Model, nets) -> dict[str, keras.Model]:
    """One model per net sharing `train_model`'s layers: its output and the mask (no fusion, no other net)."""
    outputs = train_model.output
    return {net: keras.Model(train_model.input, {net: outputs[net], "mask": outputs["mask"]}, name=f"{train_model.name}_{net}")
            for net in nets}


def sequential_gradients(train_model, branches, objectives, batch, global_batch: int, optimizer=None, mixed_precision=False):
    """`trainer.replica_gradients` taken one net at a time: loss terms and gradients (of `train_model`'s variables)."""
    variables = train_model.trainable_variables
    index = {id(v): i for i, v in enumerate(variables)}
    grads = [None] * len(variables)
    terms, previous = {}, []
    for net, branch in branches.items():
        inputs = batch_inputs(branch, batch)
        if previous:
            # In a tf.function nothing else orders them: start this net once the previous net's backward is done.
            with tf.control_dependencies(previous):
                inputs = tf.nest.map_structure(tf.identity, inputs)
        with tf.GradientTape() as tape:
            outputs = {k: tf.cast(v, tf.float32) for k, v in branch(inputs, training=True).items()}
            net_terms = objectives[net](outputs, batch)
            loss = tf.reduce_sum(net_terms[net]) / global_batch  # per replica / GLOBAL batch, see trainer
            scaled = optimizer.scale_loss(loss) if mixed_precision else loss
        net_grads = tape.gradient(scaled, branch.trainable_variables)
        for v, g in zip(branch.trainable_variables, net_grads):
            i = index[id(v)]
            if g is not None:
                grads[i] = g if grads[i] is None else grads[i] + g  # shared layers: the terms' gradients add
        previous = [g for g in net_grads if g is not None]
        terms.update(net_terms)
    terms["total"] = tf.add_n(list(terms.values()))
    return {k: tf.reduce_sum(v) / global_batch for k, v in terms.items()}, grads
