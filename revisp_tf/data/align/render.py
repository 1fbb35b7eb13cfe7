"""Finding and proving where an RGB render lies on the RAW mosaic.

Every scorer compares the RAW's canonical RGGB mosaic with the RGB re-mosaiced (RGGB) at a set
of integer shifts; the best shift must win by a margin over every other. `alignment_scores`
suits renders that are nearly a global function of the RAW (LibRaw), `gradient_alignment_scores`
those that are not (darktable, RawTherapee); `render_origin_scores` finds where a render that
lost some border pixels (RawTherapee) lies on the mosaic.
"""

from __future__ import annotations

import numpy as np

from revisp_tf.isp.bayer import mosaic, pack
from revisp_tf.isp.color_fit import srgb_to_linear


def _window_scores(rgb, raw_rggb, rows: slice, cols: slice, shifts_y, shifts_x, score, prepare=None) -> np.ndarray:
    """score(prepare(pack(raw[rows, cols])), mosaic(rgb[rows + dy, cols + dx])) for every dy in shifts_y, dx in shifts_x.

    `rows.start` and `cols.start` are even, so the RAW window keeps the RGGB phase and the
    re-mosaiced RGB window is compared site by site with it. `prepare` (default: none) is what
    `score` does to its first argument, done once here instead of once per shift.
    """
    assert rows.start % 2 == 0 and cols.start % 2 == 0, (rows, cols)
    ref = np.asarray(pack(raw_rggb[rows, cols, np.newaxis]))
    ref = ref if prepare is None else prepare(ref)
    scores = np.zeros((len(shifts_y), len(shifts_x)))
    for i, dy in enumerate(shifts_y):
        for j, dx in enumerate(shifts_x):
            win = rgb[rows.start + dy : rows.stop + dy, cols.start + dx : cols.stop + dx]
            scores[i, j] = score(ref, np.asarray(mosaic(win)))
    return scores


def _shift_scores(rgb: np.ndarray, raw_rggb: np.ndarray, max_shift: int, score, prepare=None) -> np.ndarray:
    """score(packed RAW, packed re-mosaiced RGB) with the RGB shifted by (dy, dx) in [-max_shift, max_shift].

    `rgb` (H, W, 3) and `raw_rggb` (H, W) canonical-phase mosaic cover the same pixels;
    entry [dy + max_shift, dx + max_shift] compares raw[y, x] with rgb[y + dy, x + dx].
    """
    m = 2 * ((max_shift + 1) // 2)  # an even margin keeps the RGGB phase
    h, w = raw_rggb.shape
    shifts = range(-max_shift, max_shift + 1)
    return _window_scores(rgb, raw_rggb, slice(m, h - m), slice(m, w - m), shifts, shifts, score, prepare)


def alignment_scores(rgb: np.ndarray, raw_rggb: np.ndarray, wb, max_shift: int = 2) -> np.ndarray:
    """Correlation of the RAW with the re-mosaiced, linearised RGB shifted by (dy, dx) in [-max_shift, max_shift].

    For renders that are nearly a global function of the RAW (LibRaw); layout as `_shift_scores`.
    """
    lin = srgb_to_linear(rgb) / np.asarray(wb, np.float64)
    return _shift_scores(lin, raw_rggb, max_shift, lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _standardised_gradients(packed: np.ndarray) -> np.ndarray:
    """(h, w, 4) -> (n, 8): vertical and horizontal differences of each channel, zero mean and unit variance."""
    g = np.concatenate([np.diff(packed, axis=0)[:, :-1], np.diff(packed, axis=1)[:-1]], axis=-1).reshape(-1, 8)
    g = g - g.mean(axis=0)
    std = g.std(axis=0)
    return g / np.where(std > 0, std, 1.0)


def _gradient_correlation(standardised_a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the 8 gradient maps of two packed images of their correlation coefficient (`a` already standardised)."""
    return float(np.mean(standardised_a * _standardised_gradients(b)))


def _gradient_inputs(rgb: np.ndarray, raw_rggb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sRGB in [0, 1] and the RAW encoded with gamma 1/2.2 (close to the render's curve)."""
    x = np.asarray(rgb, np.float64) / (255.0 if np.asarray(rgb).dtype == np.uint8 else 1.0)
    return x, np.clip(np.asarray(raw_rggb, np.float64), 0.0, None) ** (1 / 2.2)


def gradient_alignment_scores(rgb: np.ndarray, raw_rggb: np.ndarray, max_shift: int = 2) -> np.ndarray:
    """Correlation of the local gradients of the RAW and of the re-mosaiced RGB shifted by (dy, dx).

    For renders that are not a global function of the RAW (darktable: exposure, filmic, highlight
    reconstruction): each packed channel's vertical and horizontal differences are correlated
    separately, so per-channel gains and offsets drop out and a tone curve only reweights edges.
    The RAW is encoded with gamma 1/2.2, close to the render's curve, so dark and bright edges
    weigh alike in both. `rgb` is sRGB (uint8 or [0, 1]); layout as `_shift_scores`.
    """
    x, encoded = _gradient_inputs(rgb, raw_rggb)
    return _shift_scores(x, encoded, max_shift, _gradient_correlation, _standardised_gradients)


def best_shift(scores: np.ndarray) -> tuple[int, int]:
    """(dy, dx) of the highest score of a centred score table (`alignment_scores`, `gradient_alignment_scores`)."""
    r = scores.shape[0] // 2
    iy, ix = np.unravel_index(int(np.nanargmax(scores)), scores.shape)
    return int(iy) - r, int(ix) - r


def margin(scores: np.ndarray) -> float:
    """Best score minus the best other score of a table (> 0: one entry wins)."""
    flat = np.sort(np.asarray(scores, np.float64).ravel())
    return float(flat[-1] - flat[-2])


def _even_window(lo: int, hi: int, size: int) -> slice:
    """The centred slice of at most `size` (even) between lo and hi, starting on an even index."""
    lo += lo % 2
    n = min(size, hi - lo) // 2 * 2
    if n < 8:
        raise ValueError(f"no room for a comparison window between {lo} and {hi}")
    start = lo + (hi - lo - n) // 4 * 2
    return slice(start, start + n)


def render_origin_scores(rgb: np.ndarray, raw_rggb: np.ndarray, extra: int = 2, window: int = 512) -> np.ndarray:
    """Gradient correlation (as `gradient_alignment_scores`) of every placement of a render inside the mosaic.

    `rgb` (h, w, 3) sRGB shows the mosaic (H, W), h <= H and w <= W, minus some border pixels.
    Entry [oy + extra, ox + extra] scores rgb[i, j] ~ raw[i + oy, j + ox] for oy in [-extra, H - h + extra]
    and ox in [-extra, W - w + extra]: the placements inside the mosaic, plus `extra` px beyond
    them as competitors, so the winning placement always has neighbours to beat. The statistic
    is computed on a centred window of at most `window` px per side (the same for every placement).
    """
    (big_h, big_w), (h, w) = raw_rggb.shape, rgb.shape[:2]
    if h > big_h or w > big_w:
        raise ValueError(f"render {h}x{w} is larger than the mosaic {big_h}x{big_w}")
    oys, oxs = range(-extra, big_h - h + extra + 1), range(-extra, big_w - w + extra + 1)
    # RAW rows r are compared with rgb rows r - oy: r - max(oy) >= 0 and r - min(oy) < h.
    rows = _even_window(max(oys), min(h + min(oys), big_h), window)
    cols = _even_window(max(oxs), min(w + min(oxs), big_w), window)
    x, encoded = _gradient_inputs(rgb, raw_rggb)
    shifts_y, shifts_x = [-o for o in oys], [-o for o in oxs]  # placement o compares raw[r] with rgb[r - o]
    return _window_scores(x, encoded, rows, cols, shifts_y, shifts_x, _gradient_correlation, _standardised_gradients)


def best_origin(scores: np.ndarray, extra: int = 2) -> tuple[int, int]:
    """(oy, ox) of the highest score of `render_origin_scores`."""
    iy, ix = np.unravel_index(int(np.nanargmax(scores)), scores.shape)
    return int(iy) - extra, int(ix) - extra


def locate_render(rgb: np.ndarray, raw_rggb: np.ndarray, extra: int = 2, window: int = 512):
    """(oy, ox) where the render lies on the mosaic (rgb[i, j] ~ raw[i + oy, j + ox]), and the winning margin.

    ValueError if the best placement of `render_origin_scores` is one of the competitors outside the mosaic.
    """
    scores = render_origin_scores(rgb, raw_rggb, extra, window)
    oy, ox = best_origin(scores, extra)
    (big_h, big_w), (h, w) = raw_rggb.shape, rgb.shape[:2]
    if not (0 <= oy <= big_h - h and 0 <= ox <= big_w - w):
        raise ValueError(f"the render {h}x{w} fits the mosaic {big_h}x{big_w} best at ({oy}, {ox}), outside it")
    return (oy, ox), margin(scores)


def crop_to_phase(rgb: np.ndarray, origin: tuple[int, int], mosaic_shape) -> tuple[np.ndarray, tuple[int, int]]:
    """The render cropped so that it starts on an even mosaic pixel (RGGB phase kept) and has even sides inside the mosaic.

    An odd origin loses the render's first row (column); the mosaic is never resampled.
    """
    oy, ox = origin
    rgb = rgb[oy % 2 :, ox % 2 :]
    oy, ox = oy + oy % 2, ox + ox % 2
    h = min(rgb.shape[0], mosaic_shape[0] - oy) // 2 * 2
    w = min(rgb.shape[1], mosaic_shape[1] - ox) // 2 * 2
    return rgb[:h, :w], (oy, ox)
