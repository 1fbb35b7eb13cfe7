"""The frame context (NumPy): a window is the slice of the frame's, the grid is OpenCV's area
average blurred, the statistics are the log mean linear colour, and the TF form that tf.data uses
(global_stage.context_window_tf) gives the same numbers, also on a real S7 frame."""

import cv2
import numpy as np
import pytest

from revisp_tf.global_stage.context import (
    CONTEXT_CHANNELS,
    CONTEXT_GRID,
    GRID_BLUR_CELLS,
    STATS_GAMMA,
    context_window,
    frame_context,
    frame_summary,
    with_capture,
)
from revisp_tf.io.metadata import CaptureMetadata


def test_context_of_a_window_is_the_slice_of_the_frames():
    rng = np.random.default_rng(3)
    frame = rng.random((96, 160, 3)).astype(np.float32)
    whole = frame_context(frame)
    s = frame_summary(frame)
    assert np.array_equal(context_window(s, 32, 48, 40, 64), whole[32:72, 48:112])
    # Position channels: pixel centres mapped to [-1, 1]; stats: log mean of the linearised frame, everywhere.
    assert np.allclose(whole[0, 0, :2], [2 * 0.5 / 96 - 1, 2 * 0.5 / 160 - 1])
    assert np.allclose(whole[..., 5:], whole[0, 0, 5:]) and np.allclose(np.exp(whole[0, 0, 5:8]), (frame**2.2).reshape(-1, 3).mean(0), rtol=1e-4)


def test_context_blur_is_a_bilinear_view_of_the_grid():
    """A frame whose left half is 0 and right half 1: the blurred channel rises monotonically across the middle."""
    frame = np.zeros((64, 128, 3), np.float32)
    frame[:, 64:] = 1.0
    s = frame_summary(frame)
    assert s.grid.shape == (CONTEXT_GRID, CONTEXT_GRID, 3)
    row = frame_context(frame)[32, :, 2]
    assert np.all(np.diff(row) >= -1e-6) and row[0] < 0.05 and row[-1] > 0.95
    assert np.allclose(row[:64] + row[::-1][:64], 1.0, atol=1e-5)  # symmetric about the middle


def test_unknown_cells_take_the_mean_of_the_known():
    """Known top half 0.1 | 0.3 (mean 0.2), unknown bottom half 0.9: the unknown pixels count for nothing."""
    frame = np.full((64, 64, 3), 0.9, np.float32)
    frame[:32, :32], frame[:32, 32:] = 0.1, 0.3
    known = np.zeros((64, 64), bool)
    known[:32] = True
    s = frame_summary(frame, known)
    np.testing.assert_allclose(s.grid[-1], 0.2, atol=1e-4)  # 8 cells from the known ones: their mean, unblurred by them
    np.testing.assert_allclose(s.grid[0, 0], 0.1, atol=1e-3)
    np.testing.assert_allclose(s.grid[0, -1], 0.3, atol=1e-3)
    np.testing.assert_allclose(s.stats[:3], np.log(0.5 * (0.1**2.2 + 0.3**2.2)), rtol=1e-5)  # the known pixels' statistics


def test_grid_is_opencvs_area_average_blurred_and_stats_the_log_mean_linear_colour():
    frame = np.random.default_rng(5).random((160, 224, 3)).astype(np.float32)
    s = frame_summary(frame)
    area = cv2.resize(frame, (CONTEXT_GRID, CONTEXT_GRID), interpolation=cv2.INTER_AREA)
    want = cv2.GaussianBlur(area, (0, 0), GRID_BLUR_CELLS, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(s.grid, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(s.stats[:3], np.log((frame.astype(np.float64) ** 2.2).reshape(-1, 3).mean(0)), atol=1e-5)
    u8 = np.round(frame * 255).astype(np.uint8)  # uint8 samples read as [0, 1]
    np.testing.assert_allclose(frame_summary(u8).grid, frame_summary(u8.astype(np.float32) / 255).grid, atol=1e-7, rtol=0)


def test_stats_gamma_is_upis():
    from revisp_tf.isp.unprocess import GAMMA

    assert STATS_GAMMA == GAMMA


@pytest.mark.parametrize("bad", [np.zeros((8, 8)), np.zeros((8, 8, 4))])
def test_a_frame_must_be_h_w_3(bad):
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) frame"):
        frame_summary(bad)


def _tf_window(s, y0, x0, h, w):
    from revisp_tf.global_stage.layers import context_window_tf

    return context_window_tf(s.grid, s.frame_values, s.shape, (y0, x0), (h, w)).numpy()


def test_tf_form_equals_numpy_on_random_windows():
    s = with_capture(frame_summary(np.random.default_rng(6).random((300, 452, 3)).astype(np.float32)),
                     CaptureMetadata((2.0, 1.0, 1.5), 1.3, "test"))
    for y0, x0, h, w in ((0, 0, 300, 452), (17, 203, 64, 96), (236, 388, 64, 64)):
        got = context_window(s, y0, x0, h, w)
        assert got.shape == (h, w, CONTEXT_CHANNELS) and got.dtype == np.float32
        np.testing.assert_allclose(got, _tf_window(s, y0, x0, h, w), atol=1e-6, rtol=0)


def test_tf_form_equals_numpy_on_a_real_frame(realdata):
    from revisp_tf.infer import aim22 as inference

    paths = [realdata / "aim22_s7_rgb" / f"78_{k}.jpg" for k in range(48)]
    frame = inference.stitch_patches([cv2.imread(str(p))[..., ::-1] for p in paths])  # 3024 x 4032, uint8
    s = frame_summary(frame)
    assert s.shape == (3024, 4032) and s.grid.std() > 0.05  # a real frame's blurred view is not flat
    for y0, x0, h, w in ((0, 0, 496, 512), (1000, 2002, 64, 96), (2528, 3520, 496, 512)):
        np.testing.assert_allclose(context_window(s, y0, x0, h, w), _tf_window(s, y0, x0, h, w), atol=1e-6, rtol=0)


def _numpy_statistics(frame, known=None):
    """The colour constancy statistics computed directly (float64, exact quantiles) from the frame's linear pixels."""
    lin = np.maximum(frame.astype(np.float64), 1e-8) ** 2.2
    known = np.ones(frame.shape[:2], bool) if known is None else known
    px = lin[known]
    both_x, both_y = known[:, 1:] & known[:, :-1], known[1:] & known[:-1]
    edge = (np.abs(np.diff(lin, axis=1))[both_x].sum(0) + np.abs(np.diff(lin, axis=0))[both_y].sum(0)) / (both_x.sum() + both_y.sum())
    lum = px.sum(1)
    bright = px[lum >= np.quantile(lum, 0.98)].mean(0)
    chroma = lambda v: np.log([v[1] / v[0], v[1] / v[2]])  # noqa: E731
    uv = np.clip(np.stack([np.log(px[:, 1] / px[:, 0]), np.log(px[:, 1] / px[:, 2])], -1), -1.5, 1.5)  # edge bins keep the rest
    hist, _, _ = np.histogram2d(uv[:, 0], uv[:, 1], bins=4, range=[(-1.5, 1.5)] * 2, weights=lum)
    return (np.log(px.mean(0)), chroma(edge), chroma(np.quantile(px, 0.995, axis=0)), chroma(bright),
            np.sqrt(hist.ravel() / hist.sum()))


def test_colour_constancy_statistics_equal_a_direct_computation():
    """Grey edge across row blocks, max-RGB and the brightest 2 % (to the 1/1024 bins), the log-chroma histogram."""
    rng = np.random.default_rng(8)
    frame = np.clip(rng.random((600, 200, 3)) * [0.6, 0.9, 0.4] + 0.05, 0, 1).astype(np.float32)  # 600 rows: 3 blocks
    known = rng.random(frame.shape[:2]) > 0.2
    for k in (None, known):
        stats = frame_summary(frame, k).stats
        mean, edge, max_rgb, bright, hist = _numpy_statistics(frame, k)
        np.testing.assert_allclose(stats[:3], mean, atol=1e-5)
        np.testing.assert_allclose(stats[3:5], edge, atol=1e-4)
        np.testing.assert_allclose(stats[5:7], max_rgb, atol=0.01)  # quantiles to a 1/1024 bin
        np.testing.assert_allclose(stats[7:9], bright, atol=0.01)
        np.testing.assert_allclose(stats[9:], hist, atol=1e-4)


def test_capture_gains_are_the_log_raw_scale_and_flags():
    s = frame_summary(np.full((8, 8, 3), 0.5, np.float32))
    assert np.array_equal(s.gains, np.zeros(3)) and np.array_equal(s.given, np.zeros(2))  # nothing recorded
    c = with_capture(s, CaptureMetadata((2.0, 1.0, 1.6), 1.25, "test"))
    np.testing.assert_allclose(c.gains, -np.log([2.0 * 1.25, 1.25, 1.6 * 1.25]), rtol=1e-6)
    assert np.array_equal(c.given, [1, 1])
    no_level = with_capture(s, CaptureMetadata((2.0, 1.0, 1.6), None, "exif"))
    np.testing.assert_allclose(no_level.gains, -np.log([2.0, 1.0, 1.6]), rtol=1e-6)
    assert np.array_equal(no_level.given, [1, 0])
    ctx = frame_context(np.full((8, 8, 3), 0.5, np.float32), CaptureMetadata((2.0, 1.0, 1.6), 1.25, "test"))
    assert ctx.shape[-1] == CONTEXT_CHANNELS and np.allclose(ctx[..., -5:], np.r_[c.gains, c.given])
