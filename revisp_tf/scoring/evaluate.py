"""`revisp-tf eval`: the challenge metric of a model and of the classical baselines on the same pairs.

Methods: `model` (the reverse ISP) and the baselines of `revisp_tf.scoring.baselines`, each
scored per image by `revisp_tf.scoring.scorer`.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from revisp_tf.checks import check_choice
from revisp_tf.choices import DEFAULT_BASELINES, EVAL_METADATA
from revisp_tf.data.examples import read_example
from revisp_tf.global_stage.context import context_window
from revisp_tf.isp.sensor import SensorSpec
from revisp_tf.scoring.baselines import baseline_bayer, fit_baseline
from revisp_tf.scoring.scorer import packed_oe_mask, score, summarize


def evaluate_pairs(
    examples, sensor: SensorSpec, predict=None, baselines=DEFAULT_BASELINES, progress: bool = True, fitted=None, contexts=None,
    on_image=None,
) -> dict:
    """Scores `predict(rgb) -> packed` (if given) and the baselines on (RGB, RAW) examples.

    `fitted`: the GlobalInverse the "fitted" baseline uses. `contexts`: each example's frame
    context (`global_stage.placement.frame_contexts`) for a model with a global stage; `predict` is then
    called as `predict(rgb, context)`. `on_image(i, rgb, gt, oe, preds, scores)`, if given, sees
    each image's arrays once scored (preds and scores: {method: …}), e.g. for `revisp_tf.report`.

    Returns {method: {"psnr": mean, …, "images": [{"name", "psnr", …}, …]}}. Means skip NaN:
    the OE PSNR mean is over the images that have overexposed pixels.
    """
    methods = (["model"] if predict is not None else []) + list(baselines)
    rows = {m: [] for m in methods}
    for i, ex in enumerate(tqdm(examples, desc="eval", unit="image", disable=not progress)):
        rgb, gt = read_example(ex, sensor)
        oe = packed_oe_mask(rgb)
        preds = {}
        for m in methods:
            if m != "model":
                pred = baseline_bayer(m, rgb, fitted)
            elif contexts is None:
                pred = predict(rgb)
            else:
                summary, y, x = contexts[i]
                pred = predict(rgb, context_window(summary, y, x, *rgb.shape[:2]))
            if on_image is not None:  # only then is every method's prediction of the image held at once
                preds[m] = pred
            rows[m].append({"name": Path(ex.rgb).stem, **score(pred, gt, oe, sensor)})
        if on_image is not None:
            on_image(i, rgb, gt, oe, preds, {m: rows[m][-1] for m in methods})
    return {m: {**summarize(rows[m]), "images": rows[m]} for m in methods}


def run_eval(model, data_dir, sensor: SensorSpec, *, layout: str = "aim22", baselines=DEFAULT_BASELINES, fit_data=None,
             skip_bad: bool = False, progress: bool = True, report_dir=None, about: dict | None = None,
             metadata: str = "recorded") -> tuple[dict, list]:
    """`revisp-tf eval`: scans the pairs, fits the "fitted" baseline on `fit_data`, scores `model` (None: baselines only).

    `metadata` "recorded": a global-stage model gets each frame's recorded gains (meta.json),
    "none": none, so its frame-gain prior alone decides them.

    With `report_dir`, also writes the HTML report there (`revisp_tf.report`; `about`: lines for
    its header). Returns (report, the files a `skip_bad` scan left out).
    """
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.global_stage.placement import frame_contexts
    from revisp_tf.io.metadata import patch_captures
    from revisp_tf.models import has_global_stage, predict_bayer

    check_choice("metadata", metadata, EVAL_METADATA)
    baselines = list(baselines)
    if "fitted" in baselines and not fit_data:
        raise ValueError("--baselines fitted: needs --fit-data DIR (the pairs to fit the global inverse on)")
    examples = scan_pairs(data_dir, layout=layout, sensor=sensor, skip_bad=skip_bad)
    fitted = fit_baseline(scan_pairs(fit_data, layout=layout, sensor=sensor), sensor) if "fitted" in baselines else None
    predict = contexts = None
    if model is not None:
        predict = lambda rgb, context=None: predict_bayer(model, rgb, context=context)  # noqa: E731
        if has_global_stage(model):
            captures = patch_captures([ex.rgb for ex in examples]) if metadata == "recorded" else None
            contexts = frame_contexts(examples, captures)
    if report_dir is None:
        report = evaluate_pairs(examples, sensor, predict, baselines, progress=progress, fitted=fitted, contexts=contexts)
    else:
        from revisp_tf.report import evaluate_with_report  # the report builds on this module

        report, _ = evaluate_with_report(examples, sensor, report_dir, predict, baselines, progress=progress, fitted=fitted,
                                         contexts=contexts, about=about)
    return report, list(examples.skipped)
