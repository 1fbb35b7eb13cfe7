"""scripts/benchmark_jpeg.py's ceiling: the linear-filter share, the chroma share and the share that halves a drop."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import benchmark_jpeg as bj  # noqa: E402


@pytest.mark.parametrize("drop", [0.17, 1.0, 1.77, 3.0])
def test_removing_that_share_halves_the_drop(drop):
    excess = 10 ** (drop / 10) - 1  # JPEG error over the lossless one, which is 1
    assert 10 * np.log10(1 + (1 - bj.share_to_halve(drop)) * excess) == pytest.approx(drop / 2, abs=1e-12)


def test_an_invertible_linear_distortion_is_removed_and_white_noise_is_not():
    rng = np.random.default_rng(0)
    lossless = [rng.random((32, 40, 4)) for _ in range(3)]
    scaled = [0.5 * x[..., ::-1] + 0.1 for x in lossless]  # linear in the centre tap of other channels
    assert bj.linear_filter_share(scaled, lossless, radius=1) == pytest.approx(1.0, abs=1e-9)
    noisy = [x + 0.01 * rng.standard_normal(x.shape) for x in lossless]
    assert bj.linear_filter_share(noisy, lossless, radius=1) < 0.05  # 37 taps against 3840 samples a channel


def test_chroma_share_is_none_for_grey_and_nearly_all_for_fine_colour_on_flat_luma():
    rng = np.random.default_rng(1)
    grey = np.repeat(rng.random((64, 64, 1)), 3, -1).astype(np.float32)  # no chroma: 4:2:0 and 4:4:4 code the same luma
    share = bj.chroma_share([bj.recompress(grey, 85)], [bj.recompress(grey, 85, "444")], [grey])
    assert abs(share) < 1e-9
    # 1 px columns alternating between two colours of equal luma: 4:2:0 averages the chroma away.
    a, b = np.array([0.8, 0.4, 0.5]), np.array([0.2, 0.7, 0.4])
    b = b * (a @ [0.299, 0.587, 0.114]) / (b @ [0.299, 0.587, 0.114])
    stripes = np.where((np.arange(64) % 2 == 0)[None, :, None], a, b) * np.ones((64, 64, 1))
    stripes = stripes.astype(np.float32)
    share = bj.chroma_share([bj.recompress(stripes, 85)], [bj.recompress(stripes, 85, "444")], [stripes])
    assert share > 0.9
