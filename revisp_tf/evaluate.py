"""`revisp-tf eval`: the challenge metric of a model and of classical baselines on the same pairs.

Methods: `model` (the reverse ISP), `upi` (Brooks et al.'s unprocessing with the default
camera, the challenge's classical baseline) and `mosaic` (the challenge's sample submission:
the RGB itself, mosaiced). Each gets PSNR and SSIM per image as the scorer computes them, and
PSNR on the overexposed samples (mask of the input RGB, at each sample's own pixel) and on the rest.

`score_batch` and `summarize` are the one scorer, shared by `eval` and training validation:
predictions and ground truth come in model units and are scored in the scorer's units
(`SensorSpec.to_scoring_units`: the stored submission value / 1024, every track). A PSNR
over no samples (no overexposed pixel, or nothing else) is NaN, and means skip NaN.
`ssim_skimage` is the SSIM of current skimage with data_range 1, which some papers report
(`metrics.skimage_ssim`); `ssim` is the scorer's.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from revisp_tf import metrics
from revisp_tf.io.images import atomic_write, read_raw_npy, read_rgb
from revisp_tf.isp.bayer import mosaic, pack
from revisp_tf.isp.mask import overexposure_mask
from revisp_tf.isp.sensor import SensorSpec
from revisp_tf.isp.unprocess import default_params, unprocess_to_bayer
from revisp_tf.frame_context import context_window

BASELINES = ("upi", "mosaic", "fitted")  # "fitted": the camera-fitted global inverse, fitted on given pairs
DEFAULT_BASELINES = ("upi", "mosaic")
FIELDS = ("psnr", "ssim", "psnr_oe", "psnr_noe", "ssim_skimage")


def baseline_bayer(name: str, rgb: np.ndarray, fitted=None) -> np.ndarray:
    """Packed RGGB prediction of a classical baseline for RGB in [0, 1]; "fitted" needs `fitted` (GlobalInverse)."""
    if name == "fitted":
        if fitted is None:
            raise ValueError("baseline fitted: needs pairs to fit the global inverse on (eval --fit-data DIR)")
        return fitted.predict(rgb)
    if name == "upi":
        return np.clip(unprocess_to_bayer(rgb, default_params()).numpy(), 0.0, 1.0)
    if name == "mosaic":
        return mosaic(rgb).numpy()
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")


def fit_baseline(examples, sensor: SensorSpec):
    """The "fitted" baseline: the global inverse fitted in closed form on (RGB, RAW) examples."""
    from revisp_tf.global_inverse import fit_global_inverse

    if not examples:
        raise ValueError("baseline fitted: no pairs to fit on (eval --fit-data DIR)")
    rgbs = [read_rgb(ex.rgb) for ex in examples]
    return fit_global_inverse(rgbs, [sensor.to_model_units(read_raw_npy(ex.raw)) for ex in examples])


def packed_oe_mask(rgb) -> np.ndarray:
    """The packed 0/1 overexposure mask of RGB (…, H, W, 3): each packed sample gets its own pixel's mask."""
    return pack(overexposure_mask(rgb)).numpy()


def score(pred, gt, oe, sensor: SensorSpec) -> dict:
    """Challenge metrics of one packed prediction (h, w, 4) against its ground truth, both in model units.

    `oe` is the packed 0/1 overexposure mask (`packed_oe_mask`).
    """
    p, t = sensor.to_scoring_units(pred), sensor.to_scoring_units(gt)
    oe = np.asarray(oe, np.float64)
    return {
        "psnr": metrics.challenge_psnr(p, t),
        "ssim": metrics.challenge_ssim(p, t),
        "psnr_oe": metrics.challenge_psnr(p, t, oe),
        "psnr_noe": metrics.challenge_psnr(p, t, 1.0 - oe),
        "ssim_skimage": metrics.skimage_ssim(p, t),
    }


def score_batch(pred, gt, oe, sensor: SensorSpec) -> list[dict]:
    """`score` of each example of (N, h, w, 4) batches (NumPy or tensors)."""
    pred, gt, oe = (np.asarray(a) for a in (pred, gt, oe))
    return [score(p, t, m, sensor) for p, t, m in zip(pred, gt, oe)]


def _nanmean(values) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarize(rows: list[dict]) -> dict:
    """Mean of each metric over per-image `score` rows, skipping NaN (e.g. OE PSNR of images without OE pixels)."""
    return {f: _nanmean(r[f] for r in rows) for f in FIELDS}


def evaluate_pairs(
    examples, sensor: SensorSpec, predict=None, baselines=DEFAULT_BASELINES, progress: bool = True, fitted=None, contexts=None
) -> dict:
    """Scores `predict(rgb) -> packed` (if given) and the baselines on (RGB, RAW) examples.

    `fitted`: the GlobalInverse the "fitted" baseline uses. `contexts`: each example's frame
    context (`data.frames.frame_contexts`) for a model with a global stage; `predict` is then
    called as `predict(rgb, context)`.

    Returns {method: {"psnr": mean, …, "images": [{"name", "psnr", …}, …]}}. Means skip NaN:
    the OE PSNR mean is over the images that have overexposed pixels.
    """
    methods = (["model"] if predict is not None else []) + list(baselines)
    rows = {m: [] for m in methods}
    for i, ex in enumerate(tqdm(examples, desc="eval", unit="image", disable=not progress)):
        rgb = read_rgb(ex.rgb)
        gt = sensor.to_model_units(read_raw_npy(ex.raw))
        oe = packed_oe_mask(rgb)
        for m in methods:
            if m != "model":
                pred = baseline_bayer(m, rgb, fitted)
            elif contexts is None:
                pred = predict(rgb)
            else:
                summary, y, x = contexts[i]
                pred = predict(rgb, context_window(summary, y, x, *rgb.shape[:2]))
            rows[m].append({"name": Path(ex.rgb).stem, **score(pred, gt, oe, sensor)})
    return {m: {**summarize(rows[m]), "images": rows[m]} for m in methods}


def format_table(report: dict) -> str:
    """The terminal table: one row per method."""
    lines = [f"{'method':<8} {'PSNR':>7} {'SSIM':>7} {'PSNR OE':>8} {'PSNR NOE':>9} {'SSIM skimage':>13}"]
    for m, r in report.items():
        lines.append(f"{m:<8} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['psnr_oe']:8.2f} {r['psnr_noe']:9.2f} {r['ssim_skimage']:13.4f}")
    return "\n".join(lines)


def write_report(report: dict, json_path, csv_path=None) -> None:
    """report.json (NaN written as null) and a per-image CSV, both atomically."""
    clean = json.loads(json.dumps(report).replace("NaN", "null"))
    with atomic_write(json_path) as tmp:
        Path(tmp).write_text(json.dumps(clean, indent=1))
    if csv_path is not None:
        with atomic_write(csv_path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "method", *FIELDS])
            for m, r in report.items():
                for row in r["images"]:
                    w.writerow([row["name"], m, *(f"{row[k]:.6f}" for k in FIELDS)])
