"""`revisp-tf eval --report DIR`: the evaluation, and DIR/index.html to look at before reading the numbers.

Memory stays bounded whatever the number of images: during the evaluation each image adds
only its error sums (`ErrorProfiles`) to what `evaluate_pairs` keeps (its per-image rows).
Which images get a panel depends on every image's PSNR, so a large set is run a second time
on the chosen few (`stats.SHOWN`, 24) to draw them; a set that small or smaller is drawn on the
first pass. Each panel is kept as its JPEG only.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from revisp_tf.choices import DEFAULT_BASELINES
from revisp_tf.global_stage.placement import placements
from revisp_tf.io.atomic import atomic_write
from revisp_tf.report.page import Panel, build_page
from revisp_tf.report.panel import encode_jpeg, render_panel
from revisp_tf.report.plots import profiles_png, scatter_png
from revisp_tf.report.stats import SHOWN, ErrorProfiles, choose_images, radius_map
from revisp_tf.scoring.evaluate import evaluate_pairs

REPORT_PAGE = "index.html"


def sort_method(report: dict) -> str:
    """The method the images are ranked by: the model when evaluated, else the first baseline."""
    return "model" if "model" in report else next(iter(report))


def _panel(index: int, why: str, rgb, gt, oe, preds, scores) -> Panel:
    image = render_panel(rgb, gt, preds, oe, scores)
    return Panel(index, why, encode_jpeg(image), image.shape[:2])


def evaluate_with_report(
    examples, sensor, out_dir, predict=None, baselines=DEFAULT_BASELINES, *, progress: bool = True, fitted=None,
    contexts=None, about: dict | None = None,
) -> tuple[dict, Path]:
    """`evaluate_pairs` (same arguments, same result) plus its HTML report in `out_dir`; returns (report, page path).

    `about`: lines for the page's header (data folder, model, …).
    """
    examples = list(examples)
    if predict is None and not baselines:
        raise ValueError("eval --report: nothing to evaluate (no model and no baselines)")
    places = placements(examples)
    profiles = ErrorProfiles()
    small = len(examples) <= sum(SHOWN.values())
    drawn: dict[int, tuple] = {}

    def on_image(i, rgb, gt, oe, preds, scores):
        p = places[i]
        profiles.add(gt, preds, radius_map(gt.shape[0], gt.shape[1], p.y, p.x, p.frame_shape))
        if small:
            drawn[i] = _panel(i, "", rgb, gt, oe, preds, scores)

    report = evaluate_pairs(examples, sensor, predict, baselines, progress, fitted, contexts, on_image=on_image)
    key = sort_method(report)
    psnr = [r["psnr"] for r in report[key]["images"]]
    chosen = choose_images(psnr)
    if small:
        panels = [drawn[i] for i, _ in chosen]
    else:
        picked = [i for i, _ in chosen]
        why = dict(chosen)

        def on_chosen(k, rgb, gt, oe, preds, scores):
            drawn[picked[k]] = _panel(picked[k], why[picked[k]], rgb, gt, oe, preds, scores)

        evaluate_pairs([examples[i] for i in picked], sensor, predict, baselines, False, fitted,
                       None if contexts is None else [contexts[i] for i in picked], on_image=on_chosen)
        panels = [drawn[i] for i in picked]
    header = {**(about or {}), "images": len(examples), "methods": ", ".join(report), "written": time.strftime("%Y-%m-%d %H:%M")}
    page = build_page(report, key, np.argsort(psnr, kind="stable"), panels, scatter_png(report, key), profiles_png(profiles), header)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / REPORT_PAGE) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return report, out / REPORT_PAGE
