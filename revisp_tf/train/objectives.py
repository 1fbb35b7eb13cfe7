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


def _dual_terms(cfg: ExperimentConfig, loss_name: str, lpips_fn=None) -> dict:
    """Each dual net's own term, `fn(outputs, batch) -> (N,)`: the "oe" term reads only `outputs["oe"]`
    and the mask, the "noe" term only `outputs["noe"]` and the mask (paper loss or L2 phase)."""
    gamma = cfg.loss.noe_gamma
    if loss_name == "paper":
        return {
            "oe": lambda o, b: losses.oe_loss(o["oe"], b["demosaiced"], o["mask"], reduction="none"),
            "noe": lambda o, b: losses.noe_loss(o["noe"], b["demosaiced"], o["mask"], lpips_fn, gamma=gamma, reduction="none"),
        }
    return {
        "oe": lambda o, b: losses.l2_masked(o["oe"], b["demosaiced"], o["mask"], "oe", reduction="none"),
        "noe": lambda o, b: losses.l2_masked(o["noe"], b["demosaiced"], o["mask"], "noe", gamma=gamma, reduction="none"),
    }


def net_objectives(cfg: ExperimentConfig, loss_name: str, lpips_fn=None) -> dict | None:
    """Per-net objectives `{net: fn(outputs, batch) -> {net: (N,)}}` whose sum is `build_objective`'s
    total, or None where the nets' losses are coupled and cannot be taken one net at a time.

    Only `dual` with the paper loss or the L2 phase separates: each term reads its own net's
    output and the mask (a function of the input RGB alone). Coupled: `mse_bayer` and the YUV
    refinement, both on the fused bayer (a loss of `mask * oe + (1 - mask) * noe`).
    """
    if cfg.model.variant != "dual" or loss_name == "mse_bayer" or cfg.loss.yuv_refine_weight:
        return None
    return {net: (lambda o, b, net=net, term=term: {net: term(o, b)})
            for net, term in _dual_terms(cfg, loss_name, lpips_fn).items()}


def build_objective(cfg: ExperimentConfig, loss_name: str, lpips_fn=None):
    """Returns `fn(outputs, batch) -> {term: (N,)}` for the config's variant and the phase's loss."""
    variant = cfg.model.variant

    def objective(outputs, batch):
        if variant in ("baseline", "global") or loss_name == "mse_bayer":
            terms = {"bayer_l2": per_example_mean(tf.square(outputs["bayer"] - batch["raw"]))}
        elif variant == "dual":
            terms = {net: term(outputs, batch) for net, term in _dual_terms(cfg, loss_name, lpips_fn).items()}
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
