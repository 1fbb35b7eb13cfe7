import numpy as np
import pytest

from revisp_tf.report import stats


def test_error_by_intensity_is_the_binned_mean_of_a_hand_made_example():
    # One packed row of two samples-blocks: 8 samples whose ground truth falls in known bins of 1/16.
    gt = np.array([[[0.01, 0.05, 0.50, 0.52], [0.99, 1.20, -0.10, 0.26]]])
    pred = gt + np.array([[[0.10, -0.30, 0.20, 0.40], [-0.05, 0.15, 0.25, 0.5]]])
    profiles = stats.ErrorProfiles()
    profiles.add(gt, {"m": pred, "perfect": gt}, stats.radius_map(1, 2))
    want = np.full(16, np.nan)
    want[0] = (0.10 + 0.30 + 0.25) / 3  # 0.01, 0.05 and -0.10 (below black: first bin)
    want[8] = (0.20 + 0.40) / 2  # 0.50 and 0.52 are in [0.5, 0.5625)
    want[4] = 0.5  # 0.26 in [0.25, 0.3125)
    want[15] = (0.05 + 0.15) / 2  # 0.99 and 1.20 (above white: last bin)
    np.testing.assert_allclose(profiles.curve("intensity", "m"), want, rtol=1e-12)
    np.testing.assert_array_equal(np.isnan(profiles.curve("intensity", "perfect")), np.isnan(want))
    assert np.nansum(profiles.curve("intensity", "perfect")) == 0
    # Both blocks sit at the same distance from the centre of their 2 x 4 px frame: one radius bin holds all 8.
    radius = profiles.curve("radius", "m")
    assert np.count_nonzero(~np.isnan(radius)) == 1
    assert np.nanmax(radius) == pytest.approx(np.abs(pred - gt).mean())
    assert profiles.methods() == ["m", "perfect"]


def test_error_profiles_add_up_over_images():
    rng = np.random.default_rng(0)
    gts = [rng.random((3, 5, 4)) for _ in range(3)]
    preds = [g + rng.normal(0, 0.1, g.shape) for g in gts]
    profiles = stats.ErrorProfiles()
    for g, p in zip(gts, preds):
        profiles.add(g, {"m": p}, stats.radius_map(3, 5))
    keys = np.concatenate([g.ravel() for g in gts])
    errors = np.concatenate([np.abs(p - g).ravel() for g, p in zip(gts, preds)])
    idx = np.minimum((keys * 16).astype(int), 15)  # the bins of 1/16, by hand
    want = np.array([errors[idx == k].mean() if (idx == k).any() else np.nan for k in range(16)])
    np.testing.assert_allclose(profiles.curve("intensity", "m"), want, rtol=1e-12)


def test_radius_is_the_distance_from_the_frame_centre_over_half_its_diagonal():
    # A 4 x 4 px image: the four 2 x 2 blocks are centred at (1, 1), (1, 3), (3, 1), (3, 3); the centre is (2, 2).
    np.testing.assert_allclose(stats.radius_map(2, 2), np.full((2, 2), np.sqrt(2) / np.sqrt(8)))
    # The top-left block of an 8 x 8 px frame: (1, 1) from (4, 4); a patch at (4, 6) of it: (5, 7) from (4, 4).
    assert stats.radius_map(1, 1, 0, 0, (8, 8))[0, 0] == pytest.approx(np.hypot(3, 3) / np.hypot(4, 4))
    assert stats.radius_map(1, 1, 4, 6, (8, 8))[0, 0] == pytest.approx(np.hypot(1, 3) / np.hypot(4, 4))
    # The bottom-right block of a 1000 x 1500 px frame, centred at (999, 1499): next to the corner.
    assert stats.radius_map(1, 1, 998, 1498, (1000, 1500))[0, 0] == pytest.approx(np.hypot(499, 749) / np.hypot(500, 750))


def test_large_set_shows_the_worst_the_best_and_a_fixed_random_few():
    psnr = np.random.default_rng(1).normal(30, 4, 100)
    chosen = stats.choose_images(psnr)
    order = np.argsort(psnr)
    assert [i for i, why in chosen if why == "worst"] == list(order[:12])
    assert [i for i, why in chosen if why == "best"] == list(order[::-1][:4])
    drawn = [i for i, why in chosen if why == "random"]
    assert len(drawn) == 8 and drawn == sorted(drawn)
    assert not set(drawn) & (set(order[:12]) | set(order[-4:]))
    assert stats.choose_images(psnr) == chosen  # the seed is fixed
    assert [i for i, why in stats.choose_images(psnr, seed=1) if why == "random"] != drawn


def test_small_set_shows_every_image_worst_first():
    psnr = np.random.default_rng(2).normal(30, 4, 24)
    assert stats.choose_images(psnr) == [(int(i), "") for i in np.argsort(psnr)]


def test_wins_counts_images_strictly_above():
    assert stats.wins([30.0, 20.0, 25.0, 40.0], [29.0, 21.0, 25.0, 10.0]) == 2
