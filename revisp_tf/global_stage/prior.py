"""The frame-gain prior: each frame's log RAW scale per colour (white balance and exposure) from its statistics.

Where a frame's gains were not recorded, `FrameGains` predicts them from the frame's colour
constancy statistics (`global_stage.context`): log_gain = W (stats - reference) + b. Fitted here
in closed form over a camera's training frames that have recorded gains: ridge regression on
standardised statistics, the ridge chosen by leave-one-frame-out among RIDGES. With few frames
the ridge is large and the prior is about the frames' mean gain, which is the right answer for
them. NumPy only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

RIDGES = (0.1, 1.0, 10.0, 100.0, 1000.0)
# Statistics that hardly vary over the training frames are not scaled up: a spread below this
# (log units) counts as this, so a test frame's small difference cannot swing the prediction.
MIN_SPREAD = 0.05


@dataclasses.dataclass(frozen=True)
class FramePrior:
    """log_gain = (stats - reference) @ kernel + bias: kernel (n_stats, 3), bias (3,), reference (n_stats,)."""

    kernel: np.ndarray
    bias: np.ndarray
    reference: np.ndarray
    ridge: float | None  # None: the mean prior (no statistics)

    def predict(self, stats) -> np.ndarray:
        return (np.asarray(stats, np.float64) - self.reference) @ self.kernel + self.bias

    def to_dict(self) -> dict:
        return {"kernel": self.kernel.tolist(), "bias": self.bias.tolist(), "reference": self.reference.tolist(),
                "ridge": self.ridge}


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> FramePrior:
    mu = x.mean(axis=0)
    sd = np.maximum(x.std(axis=0), MIN_SPREAD)
    z = (x - mu) / sd
    coef = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (y - y.mean(axis=0)))
    return FramePrior(coef / sd[:, None], y.mean(axis=0), mu, ridge)


def fit_frame_prior(stats, log_gains, ridges=RIDGES) -> FramePrior:
    """The prior fitted on frames' statistics (F, n_stats) and their recorded log gains (F, 3).

    The ridge is the one of `ridges` with the lowest leave-one-frame-out squared error; with
    fewer than 3 frames, the largest.
    """
    x, y = np.asarray(stats, np.float64), np.asarray(log_gains, np.float64)
    if x.ndim != 2 or y.shape != (len(x), 3) or len(x) == 0:
        raise ValueError(f"fit_frame_prior: expected stats (F, n) and log gains (F, 3), got {x.shape} and {y.shape}")
    if len(x) < 3:
        return _ridge(x, y, max(ridges))

    def loo(ridge):
        return sum(np.sum((_ridge(np.delete(x, i, 0), np.delete(y, i, 0), ridge).predict(x[i]) - y[i]) ** 2)
                   for i in range(len(x)))

    return _ridge(x, y, min(ridges, key=loo))


def mean_frame_prior(stats, log_gains) -> FramePrior:
    """The prior that predicts the frames' mean log gains whatever the statistics (kernel zero)."""
    x, y = np.asarray(stats, np.float64), np.asarray(log_gains, np.float64)
    if x.ndim != 2 or y.shape != (len(x), 3) or len(x) == 0:
        raise ValueError(f"mean_frame_prior: expected stats (F, n) and log gains (F, 3), got {x.shape} and {y.shape}")
    return FramePrior(np.zeros((x.shape[1], 3)), y.mean(axis=0), x.mean(axis=0), None)


def angular_error_deg(wb_pred, wb_true) -> float:
    """Angle (degrees) between the illuminants two white balances imply (camera RGB of white = 1 / wb)."""
    a, b = 1.0 / np.asarray(wb_pred, np.float64), 1.0 / np.asarray(wb_true, np.float64)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0))))
