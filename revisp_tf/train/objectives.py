"""What each variant minimises in each training phase, as per-example losses.

Every objective maps (model outputs, batch) to a dict of (N,) per-example terms with a
`total`; the trainer sums `total` over the replica batch and divides by the GLOBAL batch
size, so replicas' gradients add up to the gradient of the global-batch mean.
"""

from __future__ import annotations

import tensorflow as tf

from revisp_tf import losses
from revisp_tf.losses._reduction import per_example_mean
from revisp_tf.train.config import ExperimentConfig


def _with_refinement(terms: dict, outputs, batch, cfg: ExperimentConfig) -> dict:
    if cfg.loss.yuv_refine_weight:
        terms["yuv"] = cfg.loss.yuv_refine_weight * losses.yuv_bayer_loss(
            outputs["bayer"], batch["raw"], norm=cfg.loss.yuv_refine_norm, reduction="none"
        )
    terms["total"] = tf.add_n(list(terms.values()))
    return terms


def build_objective(cfg: ExperimentConfig, loss_name: str, lpips_fn=None):
    """Returns `fn(outputs, batch) -> {term: (N,)}` for the config's variant and the phase's loss."""
    variant = cfg.model.variant

    def objective(outputs, batch):
        if variant in ("baseline", "global") or loss_name == "mse_bayer":
            terms = {"bayer_l2": per_example_mean(tf.square(outputs["bayer"] - batch["raw"]))}
        elif variant == "dual":
            gt, mask = batch["demosaiced"], outputs["mask"]
            if loss_name == "paper":
                terms = {
                    "oe": losses.oe_loss(outputs["oe"], gt, mask, reduction="none"),
                    "noe": losses.noe_loss(outputs["noe"], gt, mask, lpips_fn, gamma=cfg.loss.noe_gamma, reduction="none"),
                }
            else:
                terms = {
                    "oe": losses.l2_masked(outputs["oe"], gt, mask, "oe", reduction="none"),
                    "noe": losses.l2_masked(outputs["noe"], gt, mask, "noe", gamma=cfg.loss.noe_gamma, reduction="none"),
                }
        else:
            gt, pred = batch["demosaiced"], outputs["demosaiced"]
            if loss_name == "paper":
                terms = {"mix": losses.p20_loss(pred, gt, lpips_fn, gamma=cfg.loss.gamma, reduction="none")}
            else:
                terms = {"l2": losses.l2(pred, gt, gamma=cfg.loss.gamma, reduction="none")}
        return _with_refinement(terms, outputs, batch, cfg)

    return objective


def needs_lpips(cfg: ExperimentConfig) -> bool:
    return cfg.model.variant not in ("baseline", "global") and any(p.loss == "paper" for p in cfg.optim.phases)


def needs_demosaiced(cfg: ExperimentConfig) -> bool:
    """True if some phase's loss compares with the demosaiced-RAW ground truth (Demosaic Net)."""
    return cfg.model.variant not in ("baseline", "global") and any(p.loss != "mse_bayer" for p in cfg.optim.phases)
