"""The one place a tf.distribute strategy is chosen.

Order for `auto`: MultiWorkerMirrored when `TF_CONFIG` names more than one task (several
machines or processes), Mirrored when more than one local GPU is visible, else OneDevice on
the GPU or the CPU. Explicit names force a strategy; `devices` picks the devices of
OneDevice / Mirrored (e.g. two logical CPUs in tests).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging


def _tf_config_tasks() -> int:
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return sum(len(v) for v in cluster.values())


def build_strategy(name: str = "auto", devices: tuple[str, ...] = ()) -> tf.distribute.Strategy:
    """Returns the strategy the config asks for (see the module docstring for `auto`)."""
    # Physical, not logical, devices: listing logical ones starts the TF context, after which
    # MultiWorkerMirrored can no longer configure its collective ops.
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        if _tf_config_tasks() > 1:
            name = "multi_worker"
        elif len(devices) > 1 or len(gpus) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy(list(devices) or None)
    elif name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy(devices[0] if devices else ("/gpu:0" if gpus else "/cpu:0"))
    else:
        raise ValueError(f"unknown strategy {name!r}; expected auto, one_device, mirrored or multi_worker")
    logging.info("strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, summaries and the final model."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
