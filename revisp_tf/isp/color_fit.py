"""Per-image colour of a reconstructed RAW: the camera -> linear sRGB transform and its white point.

A reverse ISP knows both ends of the camera pipeline for each image it reconstructs: the input
RGB and the RAW it predicted. `fit_camera_colour` fits the transform that maps the demosaiced
RAW (one sample per bayer tile: R, mean G, B) back to the input's linear sRGB, on mid-tones only
(nothing clipped in the input or the RAW, nothing dark):

    linear sRGB = A @ camera,   A = ccm @ diag(gains)

- `gains` (the white balance, and exposure) make the mean camera colour of the mid-tones map
  exactly to their mean input colour, so the image's overall cast is right by construction.
  The mean weights near-neutral input tiles up (`white_point_means`): gray stays gray under
  any tone curve, so they fix the white point best.
- `ccm` is white-preserving (rows sum to 1), so it never moves the white point, and starts from
  a prior camera (default the mean camera of the synthetic-data sampler,
  `unprocess.default_params`). Its 6 free numbers are fitted by robust (Huber, iteratively
  reweighted) least squares on per-tile CIE L*a*b* errors (linear RGB would let the brightest
  tiles decide), with ridges toward the prior, on the matrix and on the white-balance gains it
  implies, that settle what a nearly uniform image leaves open.
  Its diagonal stays at 0.5 or more: editors reject a DNG matrix without it (see
  `_MIN_DIAGONAL`), and no camera has one.

Exact where the RAW is a linear function of the input's linear sRGB (the tests check it); on
a model's RAW, which is not, it is the best such transform in that sense.

`dng_colour` states A the DNG way: AsShotNeutral = A^-1 (1, 1, 1) = 1 / gains (the camera's
response to white) and ColorMatrix1 = A^-1 @ XYZ_TO_SRGB (XYZ -> camera under D65): an editor
that white-balances by AsShotNeutral and converts with ColorMatrix1 applies A.

`chroma_errors` is the check: CIE a*b* of a render against the input, after matching the
render's mean brightness (in linear light), for the image means and per pixel.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.optimize

from revisp_tf.isp.color import bayer_to_rgb_half
from revisp_tf.isp.unprocess import SRGB_TO_XYZ, default_params

# XYZ -> linear sRGB, D65 white (IEC 61966-2-1).
XYZ_TO_SRGB = np.array(
    [
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ]
)
# The colour fit's starting camera: camera -> linear sRGB of the mean synthetic camera.
PRIOR_CCM = default_params().cam2rgb
# CIE L*a*b* (CIE 15): reference white D65 as sRGB's (1, 1, 1), the cube-root knee at (6/29)^3.
_LAB_WHITE = SRGB_TO_XYZ.sum(axis=1)
_LAB_KNEE = 6.0 / 29.0
# Tiles a fit uses: input under this in every channel of the tile (sRGB, away from clipping),
_CLIP_SRGB = 0.95
# RAW under this share of white in every sample (away from sensor saturation) and above 0,
_CLIP_RAW = 0.95
# input luminance above this (linear; away from noise, quantisation and crushed blacks).
_DARK_LINEAR = 0.003
# A fit needs this many usable tiles, and this share of the image's: fewer describe its margins
# (an image clipped nearly everywhere), not the image.
MIN_TILES = 64
MIN_TILE_SHARE = 0.05
# Tiles a fit reads at most: larger images are thinned to every k-th tile row and column.
_MAX_TILES = 1_000_000
# Tiles the matrix fit sees, evenly spaced (the normal equations are tiny; the time is in Lab).
_MAX_FIT_TILES = 2000
# Lightness counts less than chroma: the tone curves of the input's ISP and the model differ.
_LAB_WEIGHTS = np.array([0.3, 1.0, 1.0])
# Ridges toward the prior, in a*b* units: per unit change of a matrix entry, and per unit
# change of the log white-balance gains the matrix implies (so the white point moves only where
# the colours ask for it).
_RIDGE = 0.3
_GAIN_RIDGE = 5.0
# White point weights: a Gaussian in input a*b* chroma, plus a floor for every tile.
_NEUTRAL_CHROMA = 8.0
_NEUTRAL_FLOOR = 0.1
# Each colour must keep at least this weight in its own sRGB primary: LibRaw (dcraw's rule
# `cmatrix[0][0] > 0.125`) and RawTherapee ignore a DNG matrix that fails it and render
# something else, and no camera has such a matrix. Enforced by a steep penalty.
_MIN_DIAGONAL = 0.5
_DIAGONAL_PENALTY = 1e3
_HUBER_K = 1.5  # in robust standard deviations of the per-tile Lab error
_ROBUST_ITERATIONS = 3
# Gains are kept above this share of the largest: a camera's response to white is positive.
_MIN_GAIN_SHARE = 1e-3
# Basis of rows summing to 0: ccm = prior + free @ _ZERO_SUM.T keeps white white.
_ZERO_SUM = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])


def srgb_to_linear(x) -> np.ndarray:
    """sRGB-encoded values (uint8, or float in [0, 1]) -> linear light in float64 (the IEC 61966-2-1 curve)."""
    x = np.asarray(x)
    x = x / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_lab(rgb) -> np.ndarray:
    """(..., 3) linear sRGB -> (..., 3) CIE L*a*b*, D65 white (linear below the knee, so negatives pass)."""
    t = np.asarray(rgb, np.float64) @ SRGB_TO_XYZ.T / _LAB_WHITE
    f = np.where(t > _LAB_KNEE**3, np.cbrt(np.maximum(t, _LAB_KNEE**3)), t / (3 * _LAB_KNEE**2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ SRGB_TO_XYZ[1]


def center_crop(image: np.ndarray, shape) -> np.ndarray:
    """The centred (h, w) crop of `image` (editors drop a few border pixels of a RAW)."""
    h, w = image.shape[:2]
    th, tw = shape
    if th > h or tw > w or (h - th) % 2 or (w - tw) % 2:
        raise ValueError(f"center_crop: cannot crop {h}x{w} to {th}x{tw} symmetrically")
    dy, dx = (h - th) // 2, (w - tw) // 2
    return image[dy : dy + th, dx : dx + tw]


@dataclasses.dataclass(frozen=True)
class ChromaErrors:
    """a*b* distances of a render to its reference.

    Args:
      of_means: between the Lab of the two images' mean linear RGB.
      per_pixel: mean over pixels of the per-pixel a*b* distance.
    """

    of_means: float
    per_pixel: float


def chroma_errors(render_srgb, reference_srgb) -> ChromaErrors:
    """a*b* errors of a render against its reference, after matching mean brightness.

    Both are sRGB-encoded (h, w, 3) in [0, 1]; a render a few pixels smaller (editors crop the
    RAW's border) is compared with the centred crop of the reference. The render is scaled in
    linear light so that its mean luminance equals the reference's, then both go to CIE Lab
    (D65): `of_means` compares the Lab of the mean linear colours, `per_pixel` averages the
    per-pixel a*b* distance.
    """
    render = srgb_to_linear(render_srgb)
    reference = srgb_to_linear(center_crop(np.asarray(reference_srgb), render.shape[:2]))
    render = render * (_luminance(reference).mean() / max(_luminance(render).mean(), 1e-12))
    mean_ab = linear_to_lab(render.reshape(-1, 3).mean(axis=0)) - linear_to_lab(reference.reshape(-1, 3).mean(axis=0))
    pixel_ab = linear_to_lab(render)[..., 1:] - linear_to_lab(reference)[..., 1:]
    return ChromaErrors(float(np.hypot(*mean_ab[1:])), float(np.hypot(pixel_ab[..., 0], pixel_ab[..., 1]).mean()))


def _block_mean(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H/2, W/2, C): the mean of each 2x2 block (one bayer tile)."""
    h, w, c = image.shape
    return image.reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3))


def _block_max(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H/2, W/2): the largest value in each 2x2 block, over channels too."""
    h, w, c = image.shape
    return image.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3, 4))


def thinning_stride(h: int, w: int) -> int:
    """Every how many tile rows and columns a fit reads of an (h, w) packed image (at most _MAX_TILES tiles)."""
    return max(1, int(np.ceil(np.sqrt(h * w / _MAX_TILES))))


def _check_pair(packed_camera, rgb_srgb) -> tuple[np.ndarray, np.ndarray]:
    """Validated (packed, rgb) as float64 in [0, 1], every `stride`-th tile per axis of a large image.

    rgb may be float in [0, 1] or unsigned integer samples (scaled by their type's maximum).
    Thinning happens before any conversion, so a 48 MP frame costs a few MB here.
    """
    packed = np.asarray(packed_camera)
    rgb = np.asarray(rgb_srgb)
    if packed.ndim != 3 or packed.shape[-1] != 4:
        raise ValueError(f"packed_camera: expected one packed bayer (h, w, 4), got shape {packed.shape}")
    h, w = packed.shape[:2]
    if rgb.shape != (2 * h, 2 * w, 3):
        raise ValueError(f"rgb: expected shape {(2 * h, 2 * w, 3)} for a packed bayer of shape {packed.shape}, got {rgb.shape}")
    stride = thinning_stride(h, w)
    packed = packed[::stride, ::stride].astype(np.float64)
    tiles = rgb.reshape(h, 2, w, 2, 3)[::stride, :, ::stride]
    scale = np.iinfo(rgb.dtype).max if rgb.dtype.kind == "u" else 1.0
    rgb = tiles.reshape(2 * tiles.shape[0], 2 * tiles.shape[2], 3).astype(np.float64) / scale
    for name, v in (("packed_camera", packed), ("rgb", rgb)):
        if not np.all((v >= 0) & (v <= 1)):
            raise ValueError(f"{name}: expected values in [0, 1]")
    return packed, rgb


def fit_samples(packed_camera, rgb_srgb) -> tuple[np.ndarray, np.ndarray]:
    """(camera RGB, linear input RGB) of the bayer tiles a colour fit uses, each (n, 3).

    One sample per 2x2 tile: the tile's R, mean G and B against the mean linear input over the
    tile. Kept: input under 0.95 in every channel of the tile, RAW under 0.95 of white and
    above 0 in every sample, input luminance above 0.003 (linear). Images over a million
    tiles are read every k-th tile row and column.
    """
    packed, rgb = _check_pair(packed_camera, rgb_srgb)
    camera = np.asarray(bayer_to_rgb_half(packed), np.float64)
    linear = _block_mean(srgb_to_linear(rgb))
    keep = (
        (_block_max(rgb) < _CLIP_SRGB)
        & (packed.max(axis=-1) < _CLIP_RAW)
        & (packed.min(axis=-1) > 0)
        & (_luminance(linear) > _DARK_LINEAR)
    )
    return camera[keep], linear[keep]


def white_balance_gains(ccm: np.ndarray, camera_mean: np.ndarray, linear_mean: np.ndarray) -> np.ndarray:
    """Gains g with ccm @ (g * camera_mean) = linear_mean, kept positive (bounded least squares)."""
    design = ccm * camera_mean
    gains = np.linalg.solve(design, linear_mean)
    floor = _MIN_GAIN_SHARE * np.abs(gains).max()
    if np.all(gains > floor):
        return gains
    # The mean colour lies outside what this ccm reaches with positive gains: the closest that does.
    return scipy.optimize.lsq_linear(design, linear_mean, bounds=(floor, np.inf)).x


@dataclasses.dataclass(frozen=True)
class CameraColour:
    """A RAW's camera -> linear sRGB transform, `ccm @ diag(gains)`.

    Args:
      ccm: 3x3 white-balanced camera RGB -> linear sRGB, rows summing to 1.
      gains: (R, G, B) white-balance gains (times exposure) applied to the camera RGB first.
      tiles: bayer tiles the fit used (0: too few usable, the prior camera and gray-world-like
        gains over all tiles were used).
    """

    ccm: np.ndarray
    gains: np.ndarray
    tiles: int

    @property
    def camera_to_srgb(self) -> np.ndarray:
        """A = ccm @ diag(gains)."""
        return self.ccm * self.gains


def white_point_means(camera: np.ndarray, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means of camera and linear input RGB over the tiles, weighted toward neutral input colours.

    Gray stays gray under any tone curve, so near-neutral tiles (weight up to 1 + floor) pin the
    white point whatever curve the input's ISP used; the rest (weight floor) still count, so an
    image without neutral content gets the gains of its plain means.
    """
    chroma = np.hypot(*linear_to_lab(linear)[:, 1:].T)
    w = np.exp(-0.5 * (chroma / _NEUTRAL_CHROMA) ** 2) + _NEUTRAL_FLOOR
    return w @ camera / w.sum(), w @ linear / w.sum()


def _fit_ccm(camera: np.ndarray, linear: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """White-preserving ccm near `prior`, robust least squares on per-tile Lab (gains follow the means)."""
    camera_mean, linear_mean = white_point_means(camera, linear)
    pick = np.linspace(0, len(camera) - 1, min(len(camera), _MAX_FIT_TILES)).round().astype(int)
    cam, target = camera[pick], linear_to_lab(linear[pick]) * _LAB_WEIGHTS
    prior_log_gains = np.log(white_balance_gains(prior, camera_mean, linear_mean))

    def ccm_and_gains(p):
        ccm = prior + p.reshape(3, 2) @ _ZERO_SUM.T
        return ccm, white_balance_gains(ccm, camera_mean, linear_mean)

    def errors(ccm, gains):
        return linear_to_lab((cam * gains) @ ccm.T) * _LAB_WEIGHTS - target

    def residuals(p, sqrt_w):
        ccm, gains = ccm_and_gains(p)
        ridges = [_RIDGE * p, _GAIN_RIDGE * (np.log(gains) - prior_log_gains)]
        ridges.append(_DIAGONAL_PENALTY * np.maximum(0.0, _MIN_DIAGONAL - np.diag(ccm)))
        return np.concatenate([(errors(ccm, gains) * sqrt_w).ravel(), *ridges])

    p, weights = np.zeros(6), np.full(len(cam), 1.0 / len(cam))
    for _ in range(_ROBUST_ITERATIONS):
        p = scipy.optimize.least_squares(residuals, p, args=(np.sqrt(weights)[:, None],)).x
        e = np.linalg.norm(errors(*ccm_and_gains(p)), axis=-1)
        scale = 1.4826 * np.median(e) + 1e-9
        weights = np.minimum(1.0, _HUBER_K * scale / np.maximum(e, 1e-12))
        weights /= weights.sum()
    return ccm_and_gains(p)[0]


def fit_camera_colour(packed_camera, rgb_srgb, prior_ccm=None) -> CameraColour:
    """The camera -> linear sRGB transform of one reconstructed RAW (see the module docstring).

    Args:
      packed_camera: (h, w, 4) packed RGGB RAW, 0 at black and 1 at white.
      rgb_srgb: (2h, 2w, 3) the sRGB image it was reconstructed from: float in [0, 1], or
        uint8/uint16 samples.
      prior_ccm: 3x3 camera -> linear sRGB matrix to start from (rows are normalised to sum to
        1); default PRIOR_CCM. A known camera's matrix belongs here.

    With fewer than MIN_TILES usable tiles, or under MIN_TILE_SHARE of the image (an image
    clipped or black nearly everywhere), the prior ccm is kept and the gains match the means of
    all tiles (`tiles` is 0 then).
    """
    prior = np.asarray(PRIOR_CCM if prior_ccm is None else prior_ccm, np.float64)
    if prior.shape != (3, 3) or not np.all(np.isfinite(prior)) or np.any(np.abs(prior.sum(axis=1)) < 1e-6):
        raise ValueError(f"prior_ccm: expected a finite 3x3 matrix with nonzero row sums, got {prior.tolist()}")
    prior = prior / prior.sum(axis=1, keepdims=True)
    camera, linear = fit_samples(packed_camera, rgb_srgb)
    total = np.asarray(packed_camera).shape[0] * np.asarray(packed_camera).shape[1]
    if len(camera) < max(MIN_TILES, MIN_TILE_SHARE * total):
        packed, rgb = _check_pair(packed_camera, rgb_srgb)
        camera_mean = np.maximum(np.asarray(bayer_to_rgb_half(packed), np.float64).reshape(-1, 3).mean(axis=0), 1e-6)
        linear_mean = np.maximum(srgb_to_linear(rgb).reshape(-1, 3).mean(axis=0), 1e-6)
        return CameraColour(prior, white_balance_gains(prior, camera_mean, linear_mean), 0)
    ccm = _fit_ccm(camera, linear, prior)
    return CameraColour(ccm, white_balance_gains(ccm, *white_point_means(camera, linear)), len(camera))


@dataclasses.dataclass(frozen=True)
class DngColour:
    """A RAW's colour the way a DNG states it.

    Args:
      color_matrix: ColorMatrix1, 3x3 XYZ -> camera under D65 (CalibrationIlluminant1 21),
        scaled so that D65 white maps to `as_shot_neutral`.
      as_shot_neutral: AsShotNeutral, the camera's response to white, (R, G, B) with G = 1.
    """

    color_matrix: np.ndarray
    as_shot_neutral: np.ndarray

    @property
    def wb_gains(self) -> np.ndarray:
        """White-balance gains an editor applies: 1 / AsShotNeutral."""
        return 1.0 / self.as_shot_neutral


def dng_colour(camera_to_srgb) -> DngColour:
    """Camera -> linear sRGB matrix A -> AsShotNeutral (A^-1 (1,1,1)) and ColorMatrix1 (A^-1 XYZ_TO_SRGB)."""
    a = np.asarray(camera_to_srgb, np.float64)
    if a.shape != (3, 3) or not np.all(np.isfinite(a)) or abs(np.linalg.det(a)) < 1e-12:
        raise ValueError(f"camera_to_srgb: expected an invertible finite 3x3 matrix, got {a.tolist()}")
    srgb_to_camera = np.linalg.inv(a)
    neutral = srgb_to_camera.sum(axis=1)
    if not np.all(neutral > 0):
        raise ValueError(f"camera_to_srgb: white maps to camera RGB {neutral.tolist()}; a camera's response to white is positive")
    return DngColour(srgb_to_camera @ XYZ_TO_SRGB / neutral[1], neutral / neutral[1])
