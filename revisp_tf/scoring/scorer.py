"""The one scorer, shared by `revisp-tf eval` and training validation, and its reports.

Predictions and ground truth come in model units and are scored in the scorer's units
(`SensorSpec.to_scoring_units`: the stored submission value / 1024, every track): PSNR and SSIM
per image as the challenge's scorer computes them, and PSNR on the overexposed samples (mask of
the input RGB, at each sample's own pixel) and on the rest. A PSNR over no samples (no
overexposed pixel, or nothing else) is NaN, and means skip NaN. `ssim_skimage` is the SSIM of
current skimage with data_range 1, which some papers report (`metrics.skimage_ssim`); `ssim` is
the scorer's.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from revisp_tf.io.atomic import atomic_write
from revisp_tf.isp.bayer import pack
from revisp_tf.isp.mask import overexposure_mask
from revisp_tf.isp.sensor import SensorSpec
from revisp_tf.scoring import metrics

FIELDS = ("psnr", "ssim", "psnr_oe", "psnr_noe", "ssim_skimage")


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


def format_table(report: dict) -> str:
    """The terminal table: one row per method."""
    lines = [f"{'method':<8} {'PSNR':>7} {'SSIM':>7} {'PSNR OE':>8} {'PSNR NOE':>9} {'SSIM skimage':>13}"]
    for m, r in report.items():
        lines.append(f"{m:<8} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['psnr_oe']:8.2f} {r['psnr_noe']:9.2f} {r['ssim_skimage']:13.4f}")
    return "\n".join(lines)


def _nan_to_none(value):
    """`value` with every float NaN inside it replaced by None (JSON null); strings, image names included, untouched."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def write_report(report: dict, json_path, csv_path=None) -> None:
    """report.json (NaN written as null) and a per-image CSV, both atomically."""
    clean = _nan_to_none(report)
    with atomic_write(json_path) as tmp:
        Path(tmp).write_text(json.dumps(clean, indent=1, allow_nan=False))
    if csv_path is not None:
        with atomic_write(csv_path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "method", *FIELDS])
            for m, r in report.items():
                for row in r["images"]:
                    w.writerow([row["name"], m, *(f"{row[k]:.6f}" for k in FIELDS)])
