"""Run as a script: loss and gradients of one device vs MirroredStrategy on 2 logical CPUs, joint and sequential.

A separate process because logical devices must be configured before TF initialises.
Prints one JSON line with the largest differences.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import numpy as np  # noqa: E402

from revisp_tf.losses.lpips import LPIPSAlex  # noqa: E402
from revisp_tf.models import build_reverse_isp, training_model  # noqa: E402
from revisp_tf.train.config import parse_config  # noqa: E402
from revisp_tf.train.objectives import build_objective, net_objectives  # noqa: E402
from revisp_tf.train.sequential import net_branches, sequential_gradients  # noqa: E402
from revisp_tf.train.strategy import build_strategy  # noqa: E402
from revisp_tf.train.trainer import replica_gradients  # noqa: E402

GLOBAL_BATCH = 4


def batch():
    rng = np.random.default_rng(0)
    rgb = rng.random((GLOBAL_BATCH, 32, 32, 3)).astype(np.float32)
    rgb[:, 8:20, 4:16] = 1.0  # overexposed block: both nets get a loss
    return {"rgb": rgb, "demosaiced": rng.random((GLOBAL_BATCH, 32, 32, 3)).astype(np.float32),
            "raw": rng.random((GLOBAL_BATCH, 16, 16, 4)).astype(np.float32)}


def loss_and_grads(strategy, weights, sequential=False):
    cfg = parse_config({"model": {"variant": "dual"}, "data": {"train_dir": "unused"}})
    with strategy.scope():
        model = build_reverse_isp("dual", base_filters=2, depth=2)
        model.set_weights(weights)
        train_model = training_model(model)
        lpips = LPIPSAlex(name="lpips")
        objective, nets = build_objective(cfg, "paper", lpips), net_objectives(cfg, "paper", lpips)
        branches = net_branches(train_model, nets)
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch()))

    @tf.function
    def step(b):
        if sequential:
            replica = lambda x: sequential_gradients(train_model, branches, nets, x, GLOBAL_BATCH)  # noqa: E731
        else:
            replica = lambda x: replica_gradients(train_model, objective, x, GLOBAL_BATCH)  # noqa: E731
        terms, grads = strategy.run(replica, args=(b,))
        reduce = lambda t: strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)  # noqa: E731
        return reduce(terms["total"]), [reduce(g) for g in grads]

    loss, grads = step(next(iter(dist)))
    return float(loss), [g.numpy() for g in grads]


if __name__ == "__main__":
    tf.keras.utils.set_random_seed(0)
    weights = build_reverse_isp("dual", base_filters=2, depth=2).get_weights()
    one = loss_and_grads(build_strategy("one_device", ("/cpu:0",)), weights)
    two_strategy = build_strategy("mirrored", ("/cpu:0", "/cpu:1"))
    two = loss_and_grads(two_strategy, weights)
    two_seq = loss_and_grads(two_strategy, weights, sequential=True)
    grad_scale = max(np.abs(g).max() for g in one[1])
    print(json.dumps({
        "replicas": two_strategy.num_replicas_in_sync,
        "loss_one": one[0], "loss_mirrored": two[0],
        "grad_max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(one[1], two[1])),
        "grad_max_abs": float(grad_scale),
        "loss_mirrored_sequential": two_seq[0],
        "grad_sequential_max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(two_seq[1], two[1])),
    }))
