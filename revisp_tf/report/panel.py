"""One image's panel: what the report shows per image and training writes to TensorBoard.

Top row: the input RGB with its overexposed pixels outlined, the ground-truth RAW and each
method's RAW, all drawn by `visualize_raw_uint8` (what `infer --format png` writes) with the
ground truth's gray-world white balance, so a colour error shows as a colour difference. Bottom
row: the image's figures per method, then each method's signed error (prediction - ground
truth, mean of the 4 samples of each 2 x 2 block) on one symmetric colour scale, with its bar:
the first method's (the model's, in `eval`) 99th percentile of |error|, so its own errors are
legible and a worse method's saturate. Drawn with matplotlib's Agg canvas directly (no pyplot
state, no display).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from revisp_tf.isp.process import channel_means, frame_wb_gains, visualize_raw_uint8

PANEL_SIDE = 224  # longest side of each picture in a panel, px
_DPI = 100
JPEG_QUALITY = 88
_PAD, _TITLE, _BAR = 6, 15, 80  # px: between pictures, above each, the colour bar and its labels
_MIN_COLUMN = 170  # px: the width of the longest title
_OUTLINE = (0, 229, 255)  # overexposed pixels: cyan, apart from the error map's red and blue
_ERROR_CMAP = "RdBu_r"  # prediction above the ground truth: red
_SCALE_FLOOR = 1e-3  # smallest error scale, so a perfect prediction still gets a readable bar
GT_LABEL = "ground truth"


def raw_views(gt, preds: dict) -> dict[str, np.ndarray]:
    """8-bit pictures of the ground truth and each prediction, all with the ground truth's white balance."""
    gains = frame_wb_gains(channel_means(gt))
    return {GT_LABEL: visualize_raw_uint8(gt, gains), **{m: visualize_raw_uint8(p, gains) for m, p in preds.items()}}


def signed_error(pred, gt) -> np.ndarray:
    """(h, w) mean over the 4 packed samples of prediction - ground truth (model units)."""
    return (np.asarray(pred, np.float64) - np.asarray(gt, np.float64)).mean(axis=-1)


def error_scale(error) -> float:
    """The colour scale's half-width: the 99th percentile of |error|, at least a floor."""
    return max(float(np.percentile(np.abs(error), 99)), _SCALE_FLOOR)


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`img` resized to (h, w) = size: area averaging down, nearest neighbour up (pixels stay visible)."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    smaller = h < img.shape[0]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_NEAREST)


def outline(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`img` with the inner border pixels of `mask` (same h, w; bool) painted in the outline colour."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # outside the frame counts as inside
    out = img.copy()
    out[mask & ~inner] = _OUTLINE
    return out


def _figures_text(scores: dict) -> str:
    """The image's figures per method as a fixed-width table; a PSNR over no pixel (NaN) as "-"."""

    def num(v, width: int, digits: int) -> str:
        return "-".rjust(width) if v is None or np.isnan(v) else f"{v:{width}.{digits}f}"

    lines = [f"{'':<8}{'PSNR':>7}{'SSIM':>8}{'OE':>7}{'other':>7}"]
    for m, s in scores.items():
        lines.append(f"{m[:8]:<8}{num(s['psnr'], 7, 2)}{num(s['ssim'], 8, 4)}{num(s['psnr_oe'], 7, 2)}{num(s['psnr_noe'], 7, 2)}")
    return "\n".join(lines)


def render_panel(rgb, gt, preds: dict, oe, scores: dict, side: int = PANEL_SIDE) -> np.ndarray:
    """The panel of one image as (H, W, 3) uint8.

    rgb: input (2h, 2w, 3) in [0, 1]; gt and each of `preds` ({method: prediction}): packed
    (h, w, 4) in model units; oe: the packed 0/1 overexposure mask; scores: {method: the
    scorer's row} (psnr, ssim, psnr_oe, psnr_noe). Matplotlib draws the text and the colour
    bar; the pictures are pasted into its pixels (a figure of image axes draws ~10x slower).
    """
    rgb = np.asarray(rgb, np.float32)
    H, W = rgb.shape[:2]
    th, tw = (side, max(1, round(side * W / H))) if H >= W else (max(1, round(side * H / W)), side)
    fit = lambda img: _fit(img, (th, tw))  # noqa: E731
    mask = fit(np.asarray(oe, np.float32).max(axis=-1)) >= 0.5  # a 2 x 2 block with any overexposed pixel
    errors = {m: signed_error(p, gt) for m, p in preds.items()}
    scale = error_scale(next(iter(errors.values())))
    norm = Normalize(-scale, scale)
    cmap = colormaps[_ERROR_CMAP]
    top_row = {"input RGB, OE outlined": outline(fit(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)), mask)}
    for name, view in raw_views(gt, preds).items():
        top_row[f"{name} RAW" if name == GT_LABEL else f"{name} RAW: {scores[name]['psnr']:.2f} dB"] = fit(view)
    bottom_row = {
        f"{name} - ground truth": outline(np.round(cmap(norm(fit(err.astype(np.float32))))[..., :3] * 255).astype(np.uint8), mask)
        for name, err in errors.items()
    }
    cols, cw = len(top_row), max(tw, _MIN_COLUMN)  # a narrow picture sits centred in a column its title fits
    width = cols * cw + (cols + 1) * _PAD + _BAR
    height = 2 * (th + _TITLE) + 3 * _PAD
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    placed = []
    for row, tiles in enumerate((top_row, bottom_row)):
        top = _PAD + _TITLE + row * (th + _TITLE + _PAD)
        first = cols - len(tiles)  # the bottom row's error maps sit under the predictions
        for k, (title, tile) in enumerate(tiles.items()):
            left = _PAD + (first + k) * (cw + _PAD) + (cw - tw) // 2
            placed.append((top, left, tile))
            fig.text((left + tw / 2) / width, 1 - (top - 2) / height, title, fontsize=8, ha="center", va="bottom")
    text_top = 2 * _PAD + _TITLE + th
    fig.text(_PAD / width, 1 - text_top / height, _figures_text(scores), family="monospace", fontsize=7.5, va="top")
    bar = fig.add_axes([(width - _BAR + _PAD) / width, _PAD / height, 10 / width, th / height])
    fig.colorbar(ScalarMappable(norm, cmap), cax=bar, extend="both").ax.tick_params(labelsize=7)
    bar.set_ylabel("RAW error (white = 1)", fontsize=7, labelpad=1)
    agg = FigureCanvasAgg(fig)
    agg.draw()
    out = np.asarray(agg.buffer_rgba())[..., :3].copy()
    for top, left, tile in placed:  # pasted as pixels after drawing: nothing resampled
        out[top : top + th, left : left + tw] = tile
    return out


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """(H, W, 3) uint8 RGB as JPEG bytes (a panel as PNG is ~5x larger: photographs)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the panel as JPEG")
    return data.tobytes()


def figure_png(fig: Figure) -> bytes:
    """A matplotlib figure as PNG bytes (Agg)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()
