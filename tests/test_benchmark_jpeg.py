"""scripts/benchmark_jpeg.py's ceiling: the linear-filter share and the share that halves a drop."""

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
