"""How well a frame's white balance can be predicted from its rendered RGB: a learned prior against the mean gain and grey world.

    python scripts/benchmark_wb_prior.py [--data ../shared/realdata/imx135_intel_tau] [--json out.json]

Each IMX135 frame (linear camera RGB with its measured illuminant, INTEL-TAU) is mosaiced (RGGB),
demosaiced (bilinear) and rendered as a camera with a perfect auto white balance would: gains
wb = 1 / illuminant (green 1), an exposure putting the 99th percentile of the balanced frame at
white, a fixed CCM (the mean synthetic camera's, `unprocess.default_params().cam2rgb`), the sRGB
curve, 8 bits. A reverse ISP sees only that render; undoing the curve and the CCM gives the
balanced linear frame L = wb * camera RGB (clipped where the render clipped). Each method predicts
wb from L; the error is the angle between the predicted and the measured illuminant (1 / wb),
leave one frame out:
- mean gain: the training frames' mean log gains;
- grey world (render): the scene averages to grey, so wb is proportional to the mean of L. On a
  balanced render that mean is near grey whatever the camera's gains were, so this predicts
  about unit gains: grey world has nothing to read in a white-balanced image;
- grey world (camera RGB), for reference only: the classic estimate from the camera RGB itself
  (mean camera RGB = illuminant), which a reverse ISP never sees: the error a grey-world camera
  AWB would make;
- ridge (statistics): ridge regression from the log-chroma (log G/R, log G/B) of what a colour
  constancy method reads from L (its mean = grey world, its mean gradient = grey edge, its 99.5th
  percentile = max-RGB, the mean of its brightest 2 %) to log wb, trained on the other frames
  (the ridge chosen by leave-one-out within them);
- ridge (+ histogram): the same plus an 8 x 8 log-chroma histogram of L's pixels.
Prints mean, median and worst-25% mean angular error (degrees) for each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from revisp_tf.isp.color_fit import srgb_to_linear
from revisp_tf.isp.process import demosaic_bilinear
from revisp_tf.isp.unprocess import default_params

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "imx135_intel_tau"
RIDGES = (0.01, 0.1, 1.0, 10.0, 100.0)
HIST_BINS = 8
HIST_RANGE = (-1.5, 1.5)  # log-chroma range of the histogram (natural log)


def srgb_encode(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def load_frame(png: Path) -> tuple[np.ndarray, np.ndarray]:
    """(linear camera RGB in [0, 1], the measured illuminant RGB) of one frame."""
    bgr = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint16:
        raise ValueError(f"{png}: expected a 16-bit PNG")
    illuminant = np.asarray(json.loads(png.with_suffix(".json").read_text())["illuminant_color_raw"], np.float64)
    return bgr[..., ::-1].astype(np.float64) / 65535.0, illuminant


def render(camera_rgb: np.ndarray, wb: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """Mosaic (RGGB), bilinear demosaic, white balance, auto exposure, CCM, sRGB curve, uint8."""
    h, w = (s // 2 * 2 for s in camera_rgb.shape[:2])
    cam = camera_rgb[:h, :w]
    packed = np.stack([cam[0::2, 0::2, 0], cam[0::2, 1::2, 1], cam[1::2, 0::2, 1], cam[1::2, 1::2, 2]], axis=-1)
    balanced = np.asarray(demosaic_bilinear(packed.astype(np.float32)), np.float64) * wb
    balanced /= max(np.quantile(balanced.max(axis=-1), 0.99), 1e-9)
    return np.round(255 * srgb_encode(np.clip(np.clip(balanced, 0, 1) @ ccm.T, 0, 1))).astype(np.uint8)


def balanced_linear(rgb_u8: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """What a reverse ISP recovers from the render: the sRGB curve and the CCM undone, (N, 3)."""
    return np.maximum(srgb_to_linear(rgb_u8.astype(np.float64) / 255.0).reshape(-1, 3) @ np.linalg.inv(ccm).T, 1e-6)


def log_chroma(rgb) -> np.ndarray:
    """(log G/R, log G/B) of an RGB triple (or rows of them)."""
    rgb = np.maximum(np.asarray(rgb, np.float64), 1e-9)
    return np.stack([np.log(rgb[..., 1] / rgb[..., 0]), np.log(rgb[..., 1] / rgb[..., 2])], -1)


def statistics(lin: np.ndarray, shape) -> np.ndarray:
    """Log-chroma of grey world, grey edge, max-RGB and the brightest 2 % of L."""
    img = lin.reshape(*shape, 3)
    edges = np.abs(np.diff(img, axis=0)).reshape(-1, 3).mean(axis=0) + np.abs(np.diff(img, axis=1)).reshape(-1, 3).mean(axis=0)
    lum = lin.sum(axis=1)
    bright = lin[lum >= np.quantile(lum, 0.98)].mean(axis=0)
    stats = [lin.mean(axis=0), edges, np.quantile(lin, 0.995, axis=0), bright]
    return np.concatenate([log_chroma(s) for s in stats])


def histogram(lin: np.ndarray) -> np.ndarray:
    """Luminance-weighted 8 x 8 log-chroma histogram of L's pixels, normalised to sum 1."""
    uv = log_chroma(lin)
    h, _, _ = np.histogram2d(uv[:, 0], uv[:, 1], bins=HIST_BINS, range=[HIST_RANGE, HIST_RANGE], weights=lin.sum(axis=1))
    return np.sqrt(h.ravel() / max(h.sum(), 1e-12))


def angular_error_deg(wb_pred: np.ndarray, illuminant: np.ndarray) -> float:
    """Angle between the illuminant a predicted wb implies (1 / wb) and the measured one."""
    a, b = 1.0 / wb_pred, illuminant
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def wb_of(log_gains: np.ndarray) -> np.ndarray:
    """(log R, log B) gains over green -> (R, 1, B)."""
    return np.array([np.exp(log_gains[0]), 1.0, np.exp(log_gains[1])])


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float):
    """Ridge regression on standardised features; returns a predictor."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    ym = y.mean(axis=0)
    z = (x - mu) / sd
    coef = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (y - ym))
    return lambda q: ((q - mu) / sd) @ coef + ym


def ridge_loo(x: np.ndarray, y: np.ndarray) -> float:
    """The ridge of RIDGES with the lowest leave-one-out squared error on (x, y)."""
    def loo(lam):
        return sum(np.sum((ridge_fit(np.delete(x, i, 0), np.delete(y, i, 0), lam)(x[i]) - y[i]) ** 2) for i in range(len(x)))

    return min(RIDGES, key=loo)


def summary(errors) -> dict:
    e = np.sort(np.asarray(errors))
    return {"mean": float(e.mean()), "median": float(np.median(e)), "worst25": float(e[-max(1, len(e) // 4) :].mean())}


def run(data: Path) -> dict:
    pngs = sorted(data.glob("field_*.png"))
    if not pngs:
        raise SystemExit(f"{data}: no field_*.png frames (../shared/realdata/imx135_intel_tau is absent?)")
    ccm = default_params().cam2rgb
    log_wb, stats, hists, illuminants, camera_means = [], [], [], [], []
    for png in pngs:
        cam, illuminant = load_frame(png)
        wb = illuminant[1] / illuminant
        lin = balanced_linear(render(cam, wb, ccm), ccm)
        shape = (cam.shape[0] // 2 * 2, cam.shape[1] // 2 * 2)
        log_wb.append(np.log([wb[0], wb[2]]))
        stats.append(statistics(lin, shape))
        hists.append(histogram(lin))
        illuminants.append(illuminant)
        camera_means.append(cam.reshape(-1, 3).mean(axis=0))
    log_wb, stats, hists = np.array(log_wb), np.array(stats), np.array(hists)
    features = {"ridge (statistics)": stats, "ridge (+ histogram)": np.concatenate([stats, hists], axis=1)}
    errors = {"mean gain": [], "grey world (render)": [], **{k: [] for k in features}, "grey world (camera RGB)": []}
    for i, illuminant in enumerate(illuminants):
        train = np.delete(np.arange(len(pngs)), i)
        errors["mean gain"].append(angular_error_deg(wb_of(log_wb[train].mean(axis=0)), illuminant))
        # grey world: wb proportional to mean(L): log(R/G gain) = -log(G/R of the mean)
        errors["grey world (render)"].append(angular_error_deg(wb_of(-stats[i, :2]), illuminant))
        errors["grey world (camera RGB)"].append(angular_error_deg(1.0 / camera_means[i], illuminant))
        for name, x in features.items():
            lam = ridge_loo(x[train], log_wb[train])
            errors[name].append(angular_error_deg(wb_of(ridge_fit(x[train], log_wb[train], lam)(x[i])), illuminant))
    return {"frames": len(pngs), "errors_deg": {k: summary(v) for k, v in errors.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
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
