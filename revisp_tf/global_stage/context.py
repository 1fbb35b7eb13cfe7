"""The frame context of a global-stage model, in NumPy and OpenCV only (no TensorFlow).

Each pixel's context is computed once per *frame*: its position in the frame, a heavily blurred
view of the whole frame (local tone mapping and vignetting act at that scale, beyond what a crop
sees), the frame's colour statistics (what a colour constancy method reads: the frame-gain prior's
input) and the frame's capture gains where they were recorded (white balance and exposure, from
`io.metadata.CaptureMetadata`). A tile takes its slice (`context_window`), so tiles give
the frame's own output. The library and the LiteRT runner (mobile/, beside LiteRT on a phone's
CPU) share this module; `global_stage.layers.context_window_tf` is its TF form for tf.data.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

CONTEXT_GRID = 16  # the blurred view: the frame averaged over a 16 x 16 grid of cells (~100 px)
GRID_BLUR_CELLS = 1.0  # then Gaussian-blurred by this many cells
STATS_GAMMA = 2.2  # linear = max(rgb, 1e-8) ** 2.2 for the statistics: UPI's gamma (isp.unprocess.GAMMA)
# The colour constancy statistics (all of the linearised frame): log mean R, G, B (grey world and
# the level), then the log-chroma (log G/R, log G/B) of the mean absolute gradient (grey edge), of
# the 99.5th percentile per channel (max-RGB) and of the mean of the brightest 2 % (bright pixels),
# then a luminance-weighted HIST_BINS x HIST_BINS log-chroma histogram (square root of its shares;
# chroma beyond the range counts in the edge bins).
HIST_BINS = 4
HIST_RANGE = 1.5  # the histogram spans log-chroma -1.5..1.5 on each axis
MAX_RGB_QUANTILE = 0.995
BRIGHT_SHARE = 0.02
N_STATS = 3 + 6 + HIST_BINS * HIST_BINS
_LEVELS = 1024  # bins of the value histograms behind the quantiles (read in row blocks: no sort of the frame)
# Context channels, in order (one definition for every reader):
POSITION = slice(0, 2)  # y, x of the pixel centre in [-1, 1]
BLURRED = slice(2, 5)  # the blurred frame RGB
STATS = slice(5, 5 + N_STATS)  # the frame statistics above
GAINS = slice(STATS.stop, STATS.stop + 3)  # recorded log RAW scale per colour: -log(wb_c * exposure_gain)
GIVEN = slice(GAINS.stop, GAINS.stop + 2)  # 1 where recorded: the white balance, the exposure gain
CONTEXT_CHANNELS = GIVEN.stop
FRAME_VALUES = CONTEXT_CHANNELS - STATS.start  # the per-frame constants: statistics, gains, flags
_SUMMARY_ROWS = 256  # rows of the frame converted to float at a time: memory does not grow with the frame


@dataclasses.dataclass(frozen=True)
class FrameContext:
    """What a frame contributes to its pixels' context.

    grid (g, g, 3), stats (N_STATS,), frame size (H, W); gains (3,) the recorded log RAW scale per
    colour and given (2,) its flags (white balance, exposure), zeros where nothing was recorded
    (`with_capture` sets them).
    """

    grid: np.ndarray
    stats: np.ndarray
    shape: tuple[int, int]
    gains: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3, np.float32))
    given: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2, np.float32))

    @property
    def frame_values(self) -> np.ndarray:
        """(FRAME_VALUES,) float32: the channels every pixel of the frame shares."""
        return np.concatenate([self.stats, self.gains, self.given]).astype(np.float32)


def capture_log_gains(wb, exposure_gain) -> tuple[np.ndarray, np.ndarray]:
    """(gains, given) of a capture: log RAW scale -log(wb_c * exposure_gain) per colour and the flags.

    The RAW is the balanced linear image divided by the white balance and the exposure gain, so
    these are what the global stage multiplies its balanced estimate by. An unknown exposure gain
    (None) leaves the level to the prior (flag 0, log gain 0).
    """
    gains = -np.log(np.asarray(wb, np.float64))
    if exposure_gain is not None:
        gains = gains - np.log(float(exposure_gain))
    return gains.astype(np.float32), np.array([1.0, exposure_gain is not None], np.float32)


def with_capture(summary: FrameContext, capture) -> FrameContext:
    """`summary` with a capture's gains (`io.metadata.CaptureMetadata`, or None: unchanged)."""
    if capture is None:
        return summary
    gains, given = capture_log_gains(capture.wb, capture.exposure_gain)
    return dataclasses.replace(summary, gains=gains, given=given)


def _area_weights(size: int) -> np.ndarray:
    """(CONTEXT_GRID, size) weights averaging `size` pixels into CONTEXT_GRID cells by covered area (INTER_AREA)."""
    edges = np.arange(CONTEXT_GRID + 1) * size / CONTEXT_GRID
    lo, hi = np.arange(size), np.arange(size) + 1.0
    overlap = np.clip(np.minimum(hi, edges[1:, None]) - np.maximum(lo, edges[:-1, None]), 0.0, None)
    return overlap / (size / CONTEXT_GRID)


def frame_summary(frame_rgb, valid=None) -> FrameContext:
    """The blurred grid and colour statistics of a whole frame (H, W, 3): float in [0, 1], or uint8/uint16.

    `valid` (H, W) bool marks the pixels known (a frame stitched from some of its patches);
    grid cells with none take the mean of the known pixels. The frame is read in row blocks,
    so a 100 MP frame costs a few tens of MB beyond itself.
    """
    frame = np.asarray(frame_rgb)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame_summary: expected an (H, W, 3) frame, got {frame.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(frame.dtype, 1.0)
    h, w = frame.shape[:2]
    wy, wx = _area_weights(h), _area_weights(w)
    total, weight = np.zeros((CONTEXT_GRID, CONTEXT_GRID, 3)), np.zeros((CONTEXT_GRID, CONTEXT_GRID))
    acc = _StatsAccumulator()
    previous = None  # the last row of the previous block (vertical gradients across blocks)
    for y0 in range(0, h, _SUMMARY_ROWS):
        block = frame[y0 : y0 + _SUMMARY_ROWS].astype(np.float32) / np.float32(scale)
        known = np.ones(block.shape[:2]) if valid is None else np.asarray(valid[y0 : y0 + _SUMMARY_ROWS], np.float64)
        rows = wy[:, y0 : y0 + len(block)]
        total += np.einsum("gy,yxc,hx->ghc", rows, block * known[..., None], wx, optimize=True)
        weight += rows @ known @ wx.T
        lin = np.power(np.maximum(block, np.float32(1e-8)), np.float32(STATS_GAMMA))
        acc.add(lin, known > 0, previous)
        previous = (lin[-1:], known[-1:] > 0)
    mean = np.einsum("ghc->c", total) / max(weight.sum(), 1e-12)
    grid = np.where(weight[..., None] > 1e-9, total / np.maximum(weight[..., None], 1e-12), mean)
    grid = cv2.GaussianBlur(grid.astype(np.float32), (0, 0), GRID_BLUR_CELLS, borderType=cv2.BORDER_REPLICATE)
    return FrameContext(grid.astype(np.float32), acc.statistics(), (h, w))


def log_chroma(rgb) -> np.ndarray:
    """(..., 2) log G/R, log G/B of (..., 3) RGB."""
    rgb = np.maximum(np.asarray(rgb, np.float64), 1e-9)
    return np.stack([np.log(rgb[..., 1] / rgb[..., 0]), np.log(rgb[..., 1] / rgb[..., 2])], -1)


class _StatsAccumulator:
    """The colour constancy statistics of a frame read in row blocks (linear RGB, known-pixel mask)."""

    def __init__(self):
        self.count = 0.0
        self.total = np.zeros(3)
        self.grad, self.grad_n = np.zeros(3), 0.0
        self.channel_hist = np.zeros((3, _LEVELS))  # per channel, over [0, 1]
        self.lum_hist = np.zeros(_LEVELS)  # over the luminance R + G + B in [0, 3] ...
        self.lum_rgb = np.zeros((_LEVELS, 3))  # ... with each bin's RGB sum (the brightest 2 %'s mean)
        self.chroma = np.zeros((HIST_BINS, HIST_BINS))

    def add(self, lin: np.ndarray, known: np.ndarray, previous) -> None:
        px = lin[known].astype(np.float64)
        self.count += len(px)
        self.total += px.sum(0)
        both = known[:, 1:] & known[:, :-1]
        self.grad += np.abs(lin[:, 1:] - lin[:, :-1])[both].sum(0)
        self.grad_n += both.sum()
        stacked = lin if previous is None else np.concatenate([previous[0], lin])
        sk = known if previous is None else np.concatenate([previous[1], known])
        both = sk[1:] & sk[:-1]
        self.grad += np.abs(stacked[1:] - stacked[:-1])[both].sum(0)
        self.grad_n += both.sum()
        for c in range(3):
            self.channel_hist[c] += np.bincount(_bin(px[:, c], 1.0), minlength=_LEVELS)
        lum = px.sum(1)
        b = _bin(lum, 3.0)
        self.lum_hist += np.bincount(b, minlength=_LEVELS)
        for c in range(3):
            self.lum_rgb[:, c] += np.bincount(b, px[:, c], minlength=_LEVELS)
        uv = log_chroma(px)
        cell = np.clip(((uv + HIST_RANGE) * (HIST_BINS / (2 * HIST_RANGE))).astype(np.int64), 0, HIST_BINS - 1)
        self.chroma += np.bincount(cell[:, 0] * HIST_BINS + cell[:, 1], lum, HIST_BINS**2).reshape(HIST_BINS, HIST_BINS)

    def statistics(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError("frame_summary: the frame has no known pixels")
        mean = np.log(np.maximum(self.total / self.count, 1e-4))
        edge = self.grad / max(self.grad_n, 1.0)
        max_rgb = [(_quantile_bin(hist, MAX_RGB_QUANTILE) + 1.0) / _LEVELS for hist in self.channel_hist]
        top = _quantile_bin(self.lum_hist, 1.0 - BRIGHT_SHARE)
        bright = self.lum_rgb[top:].sum(0) / max(self.lum_hist[top:].sum(), 1.0)
        hist = np.sqrt(self.chroma.ravel() / max(self.chroma.sum(), 1e-12))
        out = np.concatenate([mean, log_chroma(edge + 1e-6), log_chroma(np.asarray(max_rgb)), log_chroma(bright + 1e-6), hist])
        return out.astype(np.float32)


def _bin(values: np.ndarray, top: float) -> np.ndarray:
    return np.clip((values * (_LEVELS / top)).astype(np.int64), 0, _LEVELS - 1)


def _quantile_bin(hist: np.ndarray, q: float) -> int:
    """The first bin at which the cumulative share reaches q."""
    return int(np.searchsorted(np.cumsum(hist), q * hist.sum()))


def context_window(summary: FrameContext, y0: int, x0: int, height: int, width: int) -> np.ndarray:
    """(height, width, CONTEXT_CHANNELS) float32 context of the window at (y0, x0): pixel centres sample the grid bilinearly."""
    fh, fw = (np.float32(s) for s in summary.shape)
    ys = np.float32(y0) + np.arange(height, dtype=np.float32) + np.float32(0.5)  # pixel centres, frame coordinates
    xs = np.float32(x0) + np.arange(width, dtype=np.float32) + np.float32(0.5)

    def axis(coord, size_px):
        g = np.clip(coord / size_px * np.float32(CONTEXT_GRID) - np.float32(0.5), 0.0, CONTEXT_GRID - 1.0).astype(np.float32)
        lo = np.minimum(np.floor(g).astype(np.int64), CONTEXT_GRID - 2)
        return lo, g - lo.astype(np.float32)

    iy, ty = axis(ys, fh)
    ix, tx = axis(xs, fw)
    one = np.float32(1.0)
    rows = summary.grid[iy] * (one - ty)[:, None, None] + summary.grid[iy + 1] * ty[:, None, None]
    out = np.empty((height, width, CONTEXT_CHANNELS), np.float32)
    out[..., 0] = (np.float32(2.0) * ys / fh - one)[:, None]
    out[..., 1] = (np.float32(2.0) * xs / fw - one)[None, :]
    out[..., BLURRED] = rows[:, ix] * (one - tx)[None, :, None] + rows[:, ix + 1] * tx[None, :, None]
    out[..., STATS.start :] = summary.frame_values
    return out


def frame_context(frame_rgb, capture=None) -> np.ndarray:
    """(H, W, CONTEXT_CHANNELS) context of every pixel of a whole frame (`capture`: its recorded gains, or None)."""
    s = with_capture(frame_summary(frame_rgb), capture)
    return context_window(s, 0, 0, *s.shape)
