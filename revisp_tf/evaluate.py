"""`revisp-tf eval`: the challenge metric of a model and of classical baselines on the same pairs.

Methods: `model` (the reverse ISP), `upi` (Brooks et al.'s unprocessing with the default
camera, the challenge's classical baseline) and `mosaic` (the challenge's sample submission:
the RGB itself, mosaiced). Each gets PSNR and SSIM per image as the scorer computes them, and
PSNR on the overexposed samples (mask of the input RGB, at each sample's own pixel) and on the rest.
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

BASELINES = ("upi", "mosaic")
FIELDS = ("psnr", "ssim", "psnr_oe", "psnr_noe")


def baseline_bayer(name: str, rgb: np.ndarray) -> np.ndarray:
    """Packed RGGB prediction of a classical baseline for RGB in [0, 1]."""
    if name == "upi":
        return np.clip(unprocess_to_bayer(rgb, default_params()).numpy(), 0.0, 1.0)
    if name == "mosaic":
        return mosaic(rgb).numpy()
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")


def score(pred: np.ndarray, gt: np.ndarray, oe: np.ndarray) -> dict:
    """Challenge metrics of one packed prediction; `oe` is the packed 0/1 overexposure mask."""
    return {
        "psnr": metrics.challenge_psnr(pred, gt),
        "ssim": metrics.challenge_ssim(pred, gt),
        "psnr_oe": metrics.challenge_psnr(pred, gt, oe) if oe.any() else math.nan,
        "psnr_noe": metrics.challenge_psnr(pred, gt, 1.0 - oe) if (1.0 - oe).any() else math.nan,
    }


def _mean(values) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def evaluate_pairs(examples, sensor: SensorSpec, predict=None, baselines=BASELINES, progress: bool = True) -> dict:
    """Scores `predict(rgb) -> packed` (if given) and the baselines on (RGB, RAW) examples.

    Returns {method: {"psnr": mean, …, "images": [{"name", "psnr", …}, …]}}. The OE PSNR
    mean is over the images that have overexposed pixels.
    """
    methods = (["model"] if predict is not None else []) + list(baselines)
    rows = {m: [] for m in methods}
    for ex in tqdm(examples, desc="eval", unit="image", disable=not progress):
        rgb = read_rgb(ex.rgb)
        gt = sensor.to_model_units(read_raw_npy(ex.raw))
        oe = pack(overexposure_mask(rgb)).numpy()
        for m in methods:
            pred = predict(rgb) if m == "model" else baseline_bayer(m, rgb)
            rows[m].append({"name": Path(ex.rgb).stem, **score(np.asarray(pred, np.float64), gt, oe)})
    return {m: {**{f: _mean(r[f] for r in rows[m]) for f in FIELDS}, "images": rows[m]} for m in methods}


def format_table(report: dict) -> str:
    """The terminal table: one row per method."""
    lines = [f"{'method':<8} {'PSNR':>7} {'SSIM':>7} {'PSNR OE':>8} {'PSNR NOE':>9}"]
    for m, r in report.items():
        lines.append(f"{m:<8} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['psnr_oe']:8.2f} {r['psnr_noe']:9.2f}")
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
