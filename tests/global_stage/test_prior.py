"""The frame-gain prior's closed-form ridge, against a direct NumPy solve, and its limits."""

import numpy as np
import pytest

from revisp_tf.global_stage.prior import MIN_SPREAD, angular_error_deg, fit_frame_prior


def test_prior_is_the_ridge_on_standardised_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    y = x[:, :3] @ np.diag([0.5, -0.2, 0.1]) + [0.3, 0.0, -0.4]
    prior = fit_frame_prior(x, y, ridges=(1.0,))
    sd = np.maximum(x.std(0), MIN_SPREAD)
    z = (x - x.mean(0)) / sd
    coef = np.linalg.solve(z.T @ z + np.eye(5), z.T @ (y - y.mean(0)))  # the same ridge, written out
    q = rng.normal(size=5)
    np.testing.assert_allclose(prior.predict(q), ((q - x.mean(0)) / sd) @ coef + y.mean(0), rtol=1e-10)
    # A small ridge fits a linear law almost exactly; the chosen ridge is the least one here.
    assert fit_frame_prior(x, y).ridge == 0.1
    assert np.abs(fit_frame_prior(x, y).predict(x) - y).max() < 0.05


def test_two_frames_give_about_their_mean():
    x, y = np.array([[0.0, 1.0], [0.2, 1.1]]), np.array([[0.1, 0.0, 0.3], [0.3, 0.0, 0.5]])
    np.testing.assert_allclose(fit_frame_prior(x, y).predict([5.0, -3.0]), y.mean(0), atol=0.02)


def test_bad_shapes_are_one_error():
    with pytest.raises(ValueError, match="expected stats"):
        fit_frame_prior(np.zeros((3, 4)), np.zeros((3, 2)))


def test_angular_error():
    assert angular_error_deg([2.0, 1.0, 1.5], [2.0, 1.0, 1.5]) == pytest.approx(0.0, abs=1e-6)
    assert angular_error_deg([1.0, 1.0, 1.0], [1.0, 1.0, 1e9]) == pytest.approx(np.degrees(np.arccos(np.sqrt(2 / 3))), rel=1e-6)


def test_mean_prior_predicts_the_frames_mean_gains_whatever_the_statistics():
    from revisp_tf.global_stage.prior import mean_frame_prior

    rng = np.random.default_rng(5)
    stats, gains = rng.normal(size=(7, 4)), rng.normal(size=(7, 3))
    prior = mean_frame_prior(stats, gains)
    for x in (stats[0], rng.normal(size=4) * 10):
        np.testing.assert_allclose(prior.predict(x), [np.mean(gains[:, c]) for c in range(3)], atol=1e-12)
    assert prior.to_dict()["ridge"] is None
