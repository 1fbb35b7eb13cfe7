"""Shared reduction of per-example losses."""

from __future__ import annotations

import tensorflow as tf

from revisp_tf.checks import check_choice

REDUCTIONS = ("mean", "none")


def check_reduction(reduction: str) -> str:
    check_choice("reduction", reduction, REDUCTIONS)
    return reduction


def per_example_mean(t):
    """(N, …) -> (N,) mean over every axis but the first."""
    return tf.reduce_mean(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)


def reduce_loss(per_example, reduction: str, rank: int):
    """(N,) per-example losses -> scalar mean, or (N,) ("none"; a scalar for unbatched input)."""
    if check_reduction(reduction) == "mean":
        return tf.reduce_mean(per_example)
    return per_example[0] if rank == 3 else per_example
