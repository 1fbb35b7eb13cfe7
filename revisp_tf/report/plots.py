"""The report's plots (matplotlib, Agg canvas): per-image scatter against a baseline, and where the error lives."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from revisp_tf.report.panel import figure_png
from revisp_tf.report.stats import INTENSITY_EDGES, RADIUS_EDGES, ErrorProfiles, wins

SCATTER_AGAINST = ("upi", "fitted")  # the baselines the model is plotted against, when evaluated


def scatter_points(report: dict, baseline: str, key: str = "model") -> tuple[np.ndarray, np.ndarray, int]:
    """(baseline PSNR, model PSNR) of each image, and on how many the model wins."""
    x = np.array([r["psnr"] for r in report[baseline]["images"]])
    y = np.array([r["psnr"] for r in report[key]["images"]])
    return x, y, wins(y, x)


def scatter_png(report: dict, key: str = "model") -> tuple[bytes, dict[str, int]] | None:
    """Model PSNR against each of `SCATTER_AGAINST` evaluated, with the diagonal; the PNG and the win counts. None without them."""
    against = [b for b in SCATTER_AGAINST if b in report and b != key] if key in report else []
    if not against:
        return None
    fig = Figure(figsize=(4.2 * len(against), 4.0), dpi=90, layout="constrained")
    counts = {}
    for k, baseline in enumerate(against):
        x, y, won = scatter_points(report, baseline, key)
        counts[baseline] = won
        ax = fig.add_subplot(1, len(against), k + 1)
        lo, hi = float(min(x.min(), y.min())) - 1, float(max(x.max(), y.max())) + 1
        ax.plot([lo, hi], [lo, hi], color="0.5", linewidth=1, label="equal PSNR")
        ax.scatter(x, y, s=10, alpha=0.7, color="tab:blue", edgecolors="none")
        ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", xlabel=f"{baseline} PSNR (dB)", ylabel=f"{key} PSNR (dB)")
        ax.set_title(f"{key} above {baseline} on {won} of {len(x)} images", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    return figure_png(fig), counts


def profiles_png(profiles: ErrorProfiles) -> bytes:
    """Mean |error| by ground-truth intensity and by distance from the frame centre, one line per method."""
    fig = Figure(figsize=(9.0, 3.6), dpi=90, layout="constrained")
    panels = (
        ("intensity", INTENSITY_EDGES, "ground-truth RAW value (white = 1)"),
        ("radius", RADIUS_EDGES, "distance from the frame centre (1 = corner)"),
    )
    for k, (curve, edges, label) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        for method in profiles.methods():
            ax.plot(centres, profiles.curve(curve, method), marker="o", markersize=3, label=method)
        ax.set(yscale="log", xlabel=label, ylabel="mean |error| (RAW, white = 1)", xlim=(edges[0], edges[-1]))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return figure_png(fig)
