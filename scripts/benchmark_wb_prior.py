"""How well a frame's white balance can be predicted from its rendered RGB: the frame-gain prior against the mean gain and grey world.

    python scripts/benchmark_wb_prior.py [--data DIR] [--json out.json]

DIR: the IMX135 frames (default: imx135_intel_tau of the real-data folder, $REVISP_REALDATA or
../shared/realdata). Each frame (linear camera RGB with its measured illuminant, INTEL-TAU) is
mosaiced (RGGB), demosaiced (bilinear) and rendered as a camera with a perfect auto white balance
would: gains wb = 1 / illuminant (green 1), an exposure putting the 99th percentile of the
balanced frame at white, a fixed CCM (the mean synthetic camera's,
`unprocess.default_params().cam2rgb`), the sRGB curve, 8 bits. A reverse ISP sees only that
render. Each method predicts wb from it; the error is the angle between the predicted and the
measured illuminant (1 / wb), leave one frame out:
- mean gain: the training frames' mean log gains;
- grey world (render): the scene averages to grey, so wb is proportional to the render's mean
  linear colour. On a balanced render that mean is near grey whatever the camera's gains were,
  so this predicts about unit gains: grey world has nothing to read in a white-balanced image;
- grey world (camera RGB), for reference only: the classic estimate from the camera RGB itself
  (mean camera RGB = illuminant), which a reverse ISP never sees: the error a grey-world camera
  AWB would make;
- frame-gain prior: the model's own (`global_stage.prior.fit_frame_prior` on the statistics
  `global_stage.context.frame_summary` computes from the render: grey world, grey edge, max-RGB,
  the brightest pixels, a 4 x 4 log-chroma histogram), fitted on the other frames' recorded
  gains as a trained model's fit phase does.
Prints mean, median and worst-25% mean angular error (degrees) for each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from revisp_tf.global_stage.context import capture_log_gains, frame_summary
from revisp_tf.global_stage.prior import angular_error_deg, fit_frame_prior
from revisp_tf.isp.process import demosaic_bilinear
from revisp_tf.isp.unprocess import default_params
from revisp_tf.realdata import realdata_dir


def srgb_encode(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def load_frame(png: Path) -> tuple[np.ndarray, np.ndarray]:
    """(linear camera RGB in [0, 1], the measured illuminant RGB) of one frame."""
    bgr = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint16:
        raise ValueError(f"{png}: expected a 16-bit PNG")
    illuminant = np.asarray(json.loads(png.with_suffix(".json").read_text())["illuminant_color_raw"], np.float64)
    return bgr[..., ::-1].astype(np.float64) / 65535.0, illuminant


def render(camera_rgb: np.ndarray, wb: np.ndarray, ccm: np.ndarray) -> tuple[np.ndarray, float]:
    """Mosaic (RGGB), bilinear demosaic, white balance, auto exposure, CCM, sRGB curve: (uint8 RGB, the exposure gain)."""
    h, w = (s // 2 * 2 for s in camera_rgb.shape[:2])
    cam = camera_rgb[:h, :w]
    packed = np.stack([cam[0::2, 0::2, 0], cam[0::2, 1::2, 1], cam[1::2, 0::2, 1], cam[1::2, 1::2, 2]], axis=-1)
    balanced = np.asarray(demosaic_bilinear(packed.astype(np.float32)), np.float64) * wb
    exposure = 1.0 / max(np.quantile(balanced.max(axis=-1), 0.99), 1e-9)
    balanced *= exposure
    return np.round(255 * srgb_encode(np.clip(np.clip(balanced, 0, 1) @ ccm.T, 0, 1))).astype(np.uint8), exposure


def wb_of(log_gains) -> np.ndarray:
    """Log RAW scale per colour (`capture_log_gains`) -> the white balance (R, 1, B) it implies."""
    g = np.asarray(log_gains, np.float64)
    return np.exp(g[1] - g)


def summary_of(errors) -> dict:
    e = np.sort(np.asarray(errors))
    return {"mean": float(e.mean()), "median": float(np.median(e)), "worst25": float(e[-max(1, len(e) // 4) :].mean())}


def run(data: Path) -> dict:
    pngs = sorted(data.glob("field_*.png"))
    if not pngs:
        raise SystemExit(f"{data}: no field_*.png frames (the real-data folder's imx135_intel_tau is absent?)")
    ccm = default_params().cam2rgb
    gains, stats, wbs, camera_means, render_means = [], [], [], [], []
    for png in pngs:
        cam, illuminant = load_frame(png)
        wb = illuminant[1] / illuminant
        rgb, exposure = render(cam, wb, ccm)
        summary = frame_summary(rgb)
        gains.append(capture_log_gains(wb, exposure)[0])
        stats.append(summary.stats)
        wbs.append(wb)
        camera_means.append(cam.reshape(-1, 3).mean(axis=0))
        render_means.append(np.exp(summary.stats[:3].astype(np.float64)))  # the render's mean linear colour
    gains, stats = np.array(gains, np.float64), np.array(stats, np.float64)
    errors = {"mean gain": [], "grey world (render)": [], "frame-gain prior": [], "grey world (camera RGB)": []}
    for i, wb in enumerate(wbs):
        train = np.delete(np.arange(len(pngs)), i)
        errors["mean gain"].append(angular_error_deg(wb_of(gains[train].mean(axis=0)), wb))
        errors["grey world (render)"].append(angular_error_deg(render_means[i][1] / render_means[i], wb))
        errors["grey world (camera RGB)"].append(angular_error_deg(camera_means[i][1] / camera_means[i], wb))
        prior = fit_frame_prior(stats[train], gains[train])
        errors["frame-gain prior"].append(angular_error_deg(wb_of(prior.predict(stats[i])), wb))
    return {"frames": len(pngs), "errors_deg": {k: summary_of(v) for k, v in errors.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=realdata_dir() / "imx135_intel_tau")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.data)
    print(f"IMX135 (INTEL-TAU), {result['frames']} frames, leave one frame out: angular error of the illuminant (degrees)")
    print(f"{'method':<24} {'mean':>6} {'median':>7} {'worst 25%':>10}")
    for name, s in result["errors_deg"].items():
        print(f"{name:<24} {s['mean']:6.2f} {s['median']:7.2f} {s['worst25']:10.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
