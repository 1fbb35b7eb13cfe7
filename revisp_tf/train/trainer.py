"""The training step: optimizer, per-replica loss and gradients, the distributed step function.

`train_lib` runs the phases and the loop around it; `evaluator` validates.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from revisp_tf.models.reverse_isp import has_global_stage
from revisp_tf.train import config as config_lib


def batch_inputs(model, batch):
    """What `model` takes from a pipeline batch: the RGB, or `[rgb, context]` with a global stage."""
    return [batch["rgb"], batch["context"]] if has_global_stage(model) else batch["rgb"]


def make_optimizer(cfg: config_lib.ExperimentConfig):
    lr = cfg.optim.phases[0].learning_rate if cfg.optim.phases else 1e-3  # a fit-only run never steps
    if cfg.optim.optimizer == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=cfg.optim.weight_decay)
    else:
        # Keras applies weight decay decoupled (as AdamW does); the paper's 1e-6 is tiny either way.
        opt = keras.optimizers.Adam(lr, weight_decay=cfg.optim.weight_decay or None)
    return keras.optimizers.LossScaleOptimizer(opt) if cfg.runtime.mixed_precision else opt


def init_weights(model, source: str) -> None:
    """Copies the weights of a saved model of the same architecture ("shipped" = the shipped model) into `model`."""
    from revisp_tf.models import load_reverse_isp
    from revisp_tf.weights import default_model_path

    path = default_model_path() if source == "shipped" else Path(source)
    donor = load_reverse_isp(path)
    shapes = [tuple(w.shape) for w in model.weights]
    if [tuple(w.shape) for w in donor.weights] != shapes or donor.name != model.name:
        raise config_lib.ConfigError(f"model.init_from: {path} is a {donor.name} of another size than the configured model")
    model.set_weights(donor.get_weights())


def replica_gradients(train_model, objective, batch, global_batch: int, optimizer=None, mixed_precision=False):
    """One replica's loss terms and gradients, both scaled so that replicas add up to the global-batch mean."""
    with tf.GradientTape() as tape:
        outputs = train_model(batch_inputs(train_model, batch), training=True)
        outputs = {k: tf.cast(v, tf.float32) for k, v in outputs.items()}
        terms = objective(outputs, batch)
        # Sum over this replica's examples / GLOBAL batch: replicas' gradients then add up
        # (the optimizer all-reduces with SUM) to the gradient of the global-batch mean.
        loss = tf.reduce_sum(terms["total"]) / global_batch
        scaled = optimizer.scale_loss(loss) if mixed_precision else loss
    grads = tape.gradient(scaled, train_model.trainable_variables)
    return {k: tf.reduce_sum(v) / global_batch for k, v in terms.items()}, grads


def distributed_step(strategy, train_model, optimizer, objective, global_batch: int, mixed_precision: bool, jit_compile: bool,
                     net_objectives=None):
    """The step function: one optimizer step on a distributed batch; returns the loss terms summed over replicas.

    With `net_objectives` (`objectives.net_objectives`), the dual nets are stepped in turn (`sequential`).
    """
    if net_objectives:
        from revisp_tf.train.sequential import net_branches, sequential_gradients

        branches = net_branches(train_model, net_objectives)

    def replica_step(batch):
        if net_objectives:
            terms, grads = sequential_gradients(train_model, branches, net_objectives, batch, global_batch, optimizer, mixed_precision)
        else:
            terms, grads = replica_gradients(train_model, objective, batch, global_batch, optimizer, mixed_precision)
        optimizer.apply_gradients(zip(grads, train_model.trainable_variables))
        return terms

    @tf.function(jit_compile=jit_compile)
    def run(batch):
        per_replica = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    return run
