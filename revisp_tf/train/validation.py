"""Validation during training: the same scorer as `revisp-tf eval` (`scoring.scorer.score_batch`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.isp.mask import overexposure_mask
from revisp_tf.isp.process import visualize_raw
from revisp_tf.report import render_panel
from revisp_tf.scoring.scorer import packed_oe_mask, score_batch, summarize
from revisp_tf.train.trainer import batch_inputs


def validate(model, dataset, sensor, max_images: int = 4):
    """Challenge PSNR/SSIM over a validation dataset, overall and on OE / other pixels; plus images.

    Means skip NaN: OE PSNR averages over the images that have overexposed pixels at all. The
    images are of the first `max_images` validation images (a fixed, unshuffled pass), among
    them "panel": each one's panel as `revisp-tf eval --report` draws it (`report.render_panel`).
    """
    rows, images = [], {}
    for batch in dataset:
        pred = tf.cast(model(batch_inputs(model, batch), training=False), tf.float32)
        oe = packed_oe_mask(batch["rgb"])
        batch_rows = score_batch(pred, batch["raw"], oe, sensor)
        rows += batch_rows
        if not images:
            n = max_images
            images = {
                "input_rgb": batch["rgb"][:n],
                "mask": overexposure_mask(batch["rgb"][:n]),
                "raw_predicted": visualize_raw(pred[:n]),
                "raw_ground_truth": visualize_raw(batch["raw"][:n]),
                "panel": np.stack([
                    render_panel(rgb, gt, {"model": p}, m, {"model": r})
                    for rgb, gt, p, m, r in zip(batch["rgb"].numpy()[:n], batch["raw"].numpy()[:n], pred.numpy()[:n], oe[:n], batch_rows)
                ]),
            }
    summary = summarize(rows)
    return {k: summary[k] for k in ("psnr", "ssim", "psnr_oe", "psnr_noe")}, images
