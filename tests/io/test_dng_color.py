"""The per-image colour fit behind the DNG's ColorMatrix1 / AsShotNeutral, and its chroma measure."""

import cv2
import numpy as np
import pytest
import rawpy
import skimage.color
import skimage.data

from revisp_tf.io.dng import fitted_colour, write_dng
from revisp_tf.isp import color_fit
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.sensor import SAMSUNG_S7
from revisp_tf.isp.unprocess import rgb2cam_from_weights

# LibRaw's sRGB -> XYZ (D65) constant, used by its DNG colour pipeline (as in test_dng.py).
LIBRAW_SRGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)


def _tiled_photo(size=64) -> np.ndarray:
    """An sRGB photo (astronaut) with one colour per 2x2 bayer tile, under the fit's clip level."""
    small = cv2.resize(skimage.data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1).astype(np.float64) / 255 * 0.9


def _linear_camera(rgb: np.ndarray, camera_to_srgb: np.ndarray) -> np.ndarray:
    """Packed RGGB of a camera whose RAW is exactly camera_to_srgb^-1 @ linear sRGB."""
    camera = np.clip(color_fit.srgb_to_linear(rgb) @ np.linalg.inv(camera_to_srgb).T, 0.0, 1.0)
    return mosaic(camera.astype(np.float32)).numpy().astype(np.float64)


def test_lab_matches_scikit_image():
    rgb = np.random.default_rng(0).random((500, 3))
    ours = color_fit.linear_to_lab(color_fit.srgb_to_linear(rgb))
    # skimage's sRGB constants differ in the 4th decimal from IEC 61966-2-1's.
    np.testing.assert_allclose(ours, skimage.color.rgb2lab(rgb), atol=0.05)
    np.testing.assert_allclose(color_fit.linear_to_lab(np.ones(3)), [100, 0, 0], atol=1e-6)


def test_chroma_errors_against_a_numpy_reference():
    rng = np.random.default_rng(1)
    reference = rng.random((40, 60, 3))
    lin = color_fit.srgb_to_linear(reference)
    # Same colours, half as bright, cropped by 2 px a side (as RawTherapee renders): no error.
    dim = skimage.color.lab2rgb(skimage.color.rgb2lab(reference))[2:-2, 2:-2]
    dim = color_fit.srgb_to_linear(dim) * 0.5
    encode = lambda x: np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0) ** (1 / 2.4) - 0.055)
    e = color_fit.chroma_errors(encode(dim), reference)
    assert e.of_means < 0.05 and e.per_pixel < 0.05
    # A cast: red x1.3 in linear light. Reference: skimage Lab of the brightness-matched images.
    cast = np.clip(lin * [1.3, 1.0, 1.0], 0, 1)
    y = lambda x: x @ [0.2126729, 0.7151522, 0.0721750]
    matched = cast * y(lin).mean() / y(cast).mean()
    lab = lambda x: skimage.color.rgb2lab(encode(np.clip(x, 0, 1)))
    ab = lab(matched)[..., 1:] - lab(lin)[..., 1:]
    mean_ab = lab(matched.reshape(-1, 3).mean(0)[None, None])[0, 0, 1:] - lab(lin.reshape(-1, 3).mean(0)[None, None])[0, 0, 1:]
    e = color_fit.chroma_errors(encode(cast), reference)
    np.testing.assert_allclose(e.per_pixel, np.hypot(ab[..., 0], ab[..., 1]).mean(), rtol=0.01)
    np.testing.assert_allclose(e.of_means, np.hypot(*mean_ab), rtol=0.01)
    assert e.of_means > 5


@pytest.mark.parametrize("weights", [(1, 0, 0, 0), (0, 0, 1, 3), (0, 2, 0, 1)])
def test_fit_recovers_a_linear_camera(weights):
    # RAW exactly linear in the input's linear sRGB: the fit must find that camera, its white
    # point to 0.2 %, its matrix to 0.02 (it starts 0.14-0.36 away, at PRIOR_CCM).
    ccm = np.linalg.inv(rgb2cam_from_weights(weights))
    gains = np.array([2.1, 1.0, 1.7]) * 1.3
    rgb = _tiled_photo()
    fit = color_fit.fit_camera_colour(_linear_camera(rgb, ccm * gains), rgb)
    assert np.abs(ccm - color_fit.PRIOR_CCM).max() > 0.1
    np.testing.assert_allclose(fit.ccm, ccm, atol=0.02)
    np.testing.assert_allclose(fit.gains / fit.gains[1], gains / gains[1], rtol=2e-3)
    np.testing.assert_allclose(fit.ccm.sum(axis=1), 1.0, atol=1e-9)
    assert fit.tiles > 3000


def test_fit_ignores_clipped_and_dark_tiles():
    # Corrupting every tile the fit must skip (input clipped, RAW saturated, input dark) changes nothing.
    ccm, gains = np.linalg.inv(rgb2cam_from_weights((0, 0, 1, 3))), np.array([2.0, 1.0, 1.6])
    rgb = _tiled_photo()
    packed = _linear_camera(rgb, ccm * gains)
    clean = color_fit.fit_camera_colour(packed, rgb)
    rgb2, packed2 = rgb.copy(), packed.copy()
    rgb2[:8] = 1.0  # clipped input: its RAW is garbage
    packed2[:4] = np.random.default_rng(2).random(packed2[:4].shape)
    packed2[4:8, :, 1] = 1.0  # a saturated green sample in these tiles
    rgb2[16:24] *= 0.05  # dark input (linear luminance under 0.003)
    packed2[8:12] = np.random.default_rng(3).random(packed2[8:12].shape) * 0.01
    corrupted = color_fit.fit_camera_colour(packed2, rgb2)
    np.testing.assert_allclose(corrupted.ccm, clean.ccm, atol=0.02)
    np.testing.assert_allclose(corrupted.gains / corrupted.gains[1], clean.gains / clean.gains[1], rtol=0.01)


@pytest.mark.parametrize("usable_rows", [0, 2])
def test_fit_falls_back_to_the_prior_on_a_clipped_image(usable_rows):
    # All clipped, or 2 of 64 tile rows usable (3 %, under MIN_TILE_SHARE though over MIN_TILES).
    rgb = np.ones((128, 128, 3))
    packed = np.full((64, 64, 4), 0.99)
    rgb[: 2 * usable_rows] = 0.5
    packed[:usable_rows] = np.random.default_rng(5).uniform(0.2, 0.4, (usable_rows, 64, 4))
    fit = color_fit.fit_camera_colour(packed, rgb)
    assert fit.tiles == 0
    np.testing.assert_allclose(fit.ccm, color_fit.PRIOR_CCM)
    assert np.all(fit.gains > 0)


def test_fit_keeps_a_matrix_editors_accept():
    # A RAW whose red comes mostly from the green channel: the exact matrix has ccm[0, 0] = 0.1,
    # which LibRaw and RawTherapee ignore (dcraw's cmatrix[0][0] > 0.125 rule). The fit stops at 0.5.
    ccm = np.array([[0.1, 1.2, -0.3], [-0.2, 1.4, -0.2], [0.0, -0.4, 1.4]])
    rgb = _tiled_photo()
    fit = color_fit.fit_camera_colour(_linear_camera(rgb, ccm * [2.0, 1.0, 1.5]), rgb)
    assert np.diag(fit.ccm).min() > 0.49
    assert fit.ccm[0, 0] < 0.6  # as close to the data as the floor allows


def test_dng_colour_states_the_transform():
    a = np.linalg.inv(rgb2cam_from_weights((1, 2, 0, 1))) * [1.9, 1.0, 1.4]
    tags = color_fit.dng_colour(a)
    # AsShotNeutral is the camera RGB of white; ColorMatrix1 maps D65 white to it.
    np.testing.assert_allclose(tags.as_shot_neutral, np.linalg.solve(a, np.ones(3)) / np.linalg.solve(a, np.ones(3))[1])
    np.testing.assert_allclose(tags.color_matrix @ np.linalg.inv(color_fit.XYZ_TO_SRGB) @ np.ones(3), tags.as_shot_neutral)
    np.testing.assert_allclose(tags.as_shot_neutral, [1 / 1.9, 1.0, 1 / 1.4])
    with pytest.raises(ValueError, match="response to white is positive"):
        color_fit.dng_colour(-np.eye(3))


def test_written_tags_make_libraw_apply_the_fitted_transform(tmp_path):
    ccm, gains = np.linalg.inv(rgb2cam_from_weights((0, 2, 0, 1))), np.array([2.2, 1.0, 1.5])
    rgb = _tiled_photo()
    packed = _linear_camera(rgb, ccm * gains).astype(np.float32)
    path = write_dng(tmp_path / "fit.dng", packed, SAMSUNG_S7, rgb=rgb, cfa="GRBG")
    fit = fitted_colour(packed, SAMSUNG_S7, rgb)
    with rawpy.imread(str(path)) as raw:
        rgb_cam, wb = raw.color_matrix[:, :3].copy(), np.asarray(raw.camera_whitebalance[:3])
        stored = raw.raw_image_visible.copy()
    # LibRaw: cam_rgb = ColorMatrix1 @ sRGB->XYZ with rows normalised to 1, rgb_cam its inverse:
    # for our tags that is the white-preserving ccm, and its camera WB is the fitted gains.
    np.testing.assert_allclose(rgb_cam, fit.ccm, atol=2e-3)
    np.testing.assert_allclose(wb / wb[1], fit.gains / fit.gains[1], rtol=1e-5)
    # Fitting the colour leaves the stored mosaic exact (GRBG: the RGGB mosaic less a column each side).
    expected = np.zeros((2 * packed.shape[0], 2 * packed.shape[1]))
    for c, (r, col) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        expected[r::2, col::2] = packed[..., c]
    np.testing.assert_array_equal(stored, np.round(expected[:, 1:-1].astype(np.float64) * 1024))


def test_rgb_argument_is_checked_and_nothing_is_written(tmp_path):
    packed = np.random.default_rng(4).random((16, 16, 4)).astype(np.float32)
    cases = [
        (dict(rgb=np.zeros((16, 16, 3))), r"rgb: expected shape \(32, 32, 3\)"),
        (dict(rgb=np.full((32, 32, 3), 2.0)), r"rgb: expected values in \[0, 1\]"),
        (dict(rgb=np.zeros((32, 32, 3)), color_matrix=np.eye(3)), "either rgb or color_matrix"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            write_dng(tmp_path / "bad.dng", packed, SAMSUNG_S7, **kwargs)
    assert list(tmp_path.iterdir()) == []
