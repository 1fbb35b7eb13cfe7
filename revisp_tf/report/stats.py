"""The report's numbers, in NumPy: where the error lives, who wins, which images get a panel.

Error here is the absolute difference of a prediction and its ground truth per packed sample,
in model units (black 0, white 1): the units the model and the curves share, whatever the sensor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

INTENSITY_EDGES = np.linspace(0.0, 1.0, 17)  # ground-truth RAW value of the sample, white = 1
RADIUS_EDGES = np.linspace(0.0, 1.0, 11)  # distance from the frame centre over half the frame's diagonal
SHOWN = {"worst": 12, "best": 4, "random": 8}  # panels of a large set; a set this small or smaller shows all
SHOWN_SEED = 0


def bin_index(keys, edges) -> np.ndarray:
    """The bin of each key: [edges[k], edges[k + 1]); keys outside the edges go in the first or last bin."""
    return np.clip(np.searchsorted(edges, np.asarray(keys), side="right") - 1, 0, len(edges) - 2)


def binned_sums(keys, values, edges) -> tuple[np.ndarray, np.ndarray]:
    """Sum of `values` and number of samples in each bin of `keys` (same shape), one entry per bin."""
    return _sums(bin_index(keys, edges).ravel(), values, len(edges) - 1)


def _sums(idx: np.ndarray, values, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.bincount(idx, weights=np.asarray(values, np.float64).ravel(), minlength=n), np.bincount(idx, minlength=n)


def radius_map(h: int, w: int, y0: int = 0, x0: int = 0, frame_shape=None) -> np.ndarray:
    """(h, w) distance of each packed sample from its frame's centre, over half the frame's diagonal.

    A packed sample stands for the 2 x 2 pixels it was taken from, so it sits at their centre;
    the image's top-left pixel is (y0, x0) in a frame of `frame_shape` pixels (the image itself when None).
    """
    fh, fw = frame_shape if frame_shape is not None else (2 * h, 2 * w)
    ys = y0 + 2.0 * np.arange(h) + 1.0 - fh / 2.0  # pixel k spans [k, k + 1]: a 2 x 2 block's centre is 2i + 1
    xs = x0 + 2.0 * np.arange(w) + 1.0 - fw / 2.0
    return np.hypot(ys[:, None], xs[None, :]) / np.hypot(fh / 2.0, fw / 2.0)


@dataclasses.dataclass
class ErrorProfiles:
    """Mean absolute error by ground-truth intensity and by distance from the frame centre, per method, over images."""

    sums: dict = dataclasses.field(default_factory=dict)  # (curve, method) -> per-bin error sums
    counts: dict = dataclasses.field(default_factory=dict)  # (curve, method) -> per-bin sample counts

    def add(self, gt, preds: dict, radius) -> None:
        """Adds one image: packed ground truth (h, w, 4), {method: packed prediction}, `radius_map` (h, w)."""
        gt = np.asarray(gt, np.float64)
        radius = np.broadcast_to(np.asarray(radius)[..., None], gt.shape)
        bins = {  # each sample's bins, found once for all methods
            "intensity": (bin_index(gt, INTENSITY_EDGES).ravel(), len(INTENSITY_EDGES) - 1),
            "radius": (bin_index(radius, RADIUS_EDGES).ravel(), len(RADIUS_EDGES) - 1),
        }
        for method, pred in preds.items():
            error = np.abs(np.asarray(pred, np.float64) - gt)
            for curve, (idx, n) in bins.items():
                s, c = _sums(idx, error, n)
                key = (curve, method)
                self.sums[key] = self.sums.get(key, 0) + s
                self.counts[key] = self.counts.get(key, 0) + c

    def curve(self, curve: str, method: str) -> np.ndarray:
        """Per-bin mean error (NaN where a bin has no sample)."""
        s, c = self.sums[(curve, method)], self.counts[(curve, method)]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / np.maximum(c, 1), np.nan)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for _, m in self.sums))


def wins(model_psnr, baseline_psnr) -> int:
    """Images on which the model's PSNR is above the baseline's."""
    return int(np.sum(np.asarray(model_psnr) > np.asarray(baseline_psnr)))


def choose_images(psnr, shown: dict = SHOWN, seed: int = SHOWN_SEED) -> list[tuple[int, str]]:
    """(index, why) of the images that get a panel: all of a small set, worst first; else the worst, best and a random few.

    A large set shows its `shown["worst"]` lowest PSNRs (worst first), its `shown["best"]` highest
    (best first) and `shown["random"]` of the rest drawn with `seed` (in index order).
    """
    psnr = np.asarray(psnr, np.float64)
    order = np.argsort(psnr, kind="stable")
    if len(psnr) <= sum(shown.values()):
        return [(int(i), "") for i in order]
    worst, best = order[: shown["worst"]], order[::-1][: shown["best"]]
    rest = np.sort(order[shown["worst"] : len(order) - shown["best"]])
    drawn = np.sort(np.random.default_rng(seed).choice(rest, shown["random"], replace=False))
    return [(int(i), "worst") for i in worst] + [(int(i), "best") for i in best] + [(int(i), "random") for i in drawn]
