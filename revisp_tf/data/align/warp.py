"""A camera's own RGB against its RAW: a warp found by features + RANSAC, refined by dense phase correlation.

The camera's JPEG is cropped, scaled, lens-corrected and perhaps slightly rotated against its RAW;
`coarse_map` finds that map from SIFT matches, `refine_map` refines it by rounds of tile shifts
(docs/alignment.md).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import scipy.optimize

# d(p) = c + (p - c)(1 + k1 r^2 + k2 r^4 + k_r r): Brown's two even terms, plus the odd one that a
# correction defined the other way round needs (RawTherapee's [Distortion]: the source radius is
# (1 - a) r + a r^2 / R of the output's; its inverse has no r^2 -> r^4 series, see docs/alignment.md).
RADIAL_POWERS = (2, 4, 1)
RADIAL_TERMS = len(RADIAL_POWERS)
MAX_ROTATION_DEG = 10.0  # a larger rotation is a wrong orientation, not a tilted sensor
MIN_MATCHES = 12
_WORK_SIDE = 1024  # the coarse match runs on images of about this many pixels on the long side
_TILE = 64  # dense refinement tiles on the RAW's half-resolution grid (32 on small frames), 3/4 tile apart
_MIN_TILES = 12
_MIN_RESPONSE = 0.05  # phase correlation peaks lower than this are noise


class AlignmentError(ValueError):
    """The RGB cannot be aligned with the RAW (another scene, too little overlap, a residual too large)."""


@dataclasses.dataclass(frozen=True)
class CameraMap:
    """RAW pixel -> RGB pixel: rgb = A @ [d(p), 1], d(p) = c + (p - c) (1 + k1 r^2 + k2 r^4 + k_r r), r = |p - c| / norm.

    Points are (x, y) = (column, row), integer at pixel centres, p on the RAW's full-resolution
    (canonical mosaic) grid; c is the RAW's centre and norm half its diagonal, so k1 and k2 are
    the radial distortion at the corners. The RAW keeps its lens distortion; the camera's JPEG
    has it corrected, cropped, scaled and perhaps slightly rotated: A holds crop, scale and rotation.

    Args:
      affine: (2, 3) A.
      radial: (k1, k2, k_r), the coefficients of r^2, r^4 and r (RADIAL_POWERS); (k1, k2) means k_r = 0.
      center: (cx, cy).
      norm: half the RAW diagonal, in px.
    """

    affine: np.ndarray
    radial: tuple[float, float]
    center: tuple[float, float]
    norm: float

    def __post_init__(self):
        radial = tuple(float(k) for k in self.radial)
        object.__setattr__(self, "radial", radial + (0.0,) * (RADIAL_TERMS - len(radial)))

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """d(p) for (n, 2) points."""
        c = np.asarray(self.center, np.float64)
        v = np.asarray(xy, np.float64) - c
        r2 = np.sum(v * v, axis=-1, keepdims=True) / self.norm**2
        k1, k2, k_r = self.radial
        return c + v * (1.0 + k1 * r2 + k2 * r2 * r2 + k_r * np.sqrt(r2))

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) RAW points -> (n, 2) RGB points."""
        d = self.distort(xy)
        return d @ self.affine[:, :2].T + self.affine[:, 2]

    def inverse(self, rgb_xy: np.ndarray, iterations: int = 20) -> np.ndarray:
        """(n, 2) RGB points -> the RAW points the map sends there (the affine inverted, then d by fixed-point iteration)."""
        a_inv = np.linalg.inv(np.vstack([self.affine, [0, 0, 1]]))
        d = np.asarray(rgb_xy, np.float64) @ a_inv[:2, :2].T + a_inv[:2, 2]
        p = d.copy()
        for _ in range(iterations):
            p = p + (d - self.distort(p))
        return p

    @property
    def scale(self) -> float:
        """RGB pixels per RAW pixel (the affine's geometric mean scale)."""
        return float(np.sqrt(abs(np.linalg.det(self.affine[:, :2]))))

    @property
    def rotation_deg(self) -> float:
        """Rotation of the RGB against the RAW, degrees counter-clockwise in the image."""
        return float(np.degrees(np.arctan2(self.affine[1, 0] - self.affine[0, 1], self.affine[0, 0] + self.affine[1, 1])))

    def to_json(self) -> dict:
        return {
            "model": "rgb = A @ [d(p), 1]; d(p) = c + (p - c) (1 + k1 r^2 + k2 r^4 + k_r r), r = |p - c| / norm; (x, y) at pixel centres",
            "A": np.asarray(self.affine).tolist(),
            "k1": self.radial[0],
            "k2": self.radial[1],
            "k_r": self.radial[2],
            "center": list(self.center),
            "norm": self.norm,
            "scale": self.scale,
            "rotation_deg": self.rotation_deg,
        }

    @classmethod
    def from_params(cls, params: np.ndarray, center, norm) -> "CameraMap":
        p = np.asarray(params, np.float64)
        return cls(p[:6].reshape(2, 3), tuple(float(k) for k in p[6:]), tuple(float(c) for c in center), float(norm))

    @classmethod
    def from_json(cls, d: dict) -> "CameraMap":
        """The map `to_json` wrote."""
        radial = (float(d["k1"]), float(d["k2"]), float(d.get("k_r", 0.0)))
        return cls(np.asarray(d["A"], np.float64), radial, tuple(d["center"]), float(d["norm"]))

    def params(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.affine, np.float64).ravel(), self.radial])


def identity_map(raw_shape) -> CameraMap:
    """The map of an RGB that is the RAW's grid itself."""
    h, w = raw_shape
    return CameraMap(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (0.0,) * RADIAL_TERMS, ((w - 1) / 2, (h - 1) / 2), float(np.hypot(w, h) / 2))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def match_histogram(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`src` through the monotone curve that gives it the value distribution of `ref` (both in [0, 1])."""
    qs = np.linspace(0.0, 1.0, 257)
    s, r = np.quantile(src, qs), np.quantile(ref, qs)
    s = np.maximum.accumulate(s + np.arange(257) * 1e-9)  # strictly increasing for interp
    return np.interp(src, s, r)


def _resize_affine(src_shape, dst_shape) -> np.ndarray:
    """3x3: pixel-centre coordinates of an image -> those of its cv2.resize to dst_shape."""
    fy, fx = dst_shape[0] / src_shape[0], dst_shape[1] / src_shape[1]
    return np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])


# The RAW's half-resolution grid (one sample per 2x2 tile) sits at full-resolution (2j + 0.5, 2i + 0.5).
_HALF_TO_FULL = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1.0]])


def _work(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image downsized to about _WORK_SIDE on its long side (never enlarged), and the 3x3 coordinate map to it."""
    f = min(1.0, _WORK_SIDE / max(img.shape[:2]))
    shape = (max(1, round(img.shape[0] * f)), max(1, round(img.shape[1] * f)))
    return cv2.resize(img, shape[::-1], interpolation=cv2.INTER_AREA), _resize_affine(img.shape[:2], shape)


def _one_match_per_place(matches, ka, kb) -> list:
    """The matches with each keypoint location (to 1 px) used once on either side, best first.

    SIFT puts several keypoints (orientations, scales) at one blob; matched to each other they make
    RANSAC's best "similarity" one that shrinks the whole RAW onto that blob (scale ~1e-20).
    """
    seen_a, seen_b, out = set(), set(), []
    for m in sorted(matches, key=lambda m: m.distance):
        a = tuple(np.round(ka[m.queryIdx].pt).astype(int))
        b = tuple(np.round(kb[m.trainIdx].pt).astype(int))
        if a not in seen_a and b not in seen_b:
            seen_a.add(a)
            seen_b.add(b)
            out.append(m)
    return out


def coarse_map(raw_half: np.ndarray, rgb_lum: np.ndarray) -> tuple[CameraMap, dict]:
    """Similarity RAW -> RGB from SIFT matches and RANSAC; AlignmentError if the images do not match.

    `raw_half` is the RAW's luminance on its half-resolution grid (gamma-encoded, [0, 1]);
    `rgb_lum` the RGB's luminance ([0, 1]). The RAW goes through the monotone curve matching its
    histogram to the RGB's, so both look alike to the detector whatever the tone curve.
    """
    a_img, a_map = _work(raw_half)
    b_img, b_map = _work(rgb_lum)
    a_img = match_histogram(a_img, b_img)
    sift = cv2.SIFT_create(nfeatures=4000)
    ka, da = sift.detectAndCompute(_u8(a_img), None)
    kb, db = sift.detectAndCompute(_u8(b_img), None)
    good = []
    if da is not None and db is not None and len(ka) >= 2 and len(kb) >= 2:
        pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
        good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < 0.75 * n.distance]
        good = _one_match_per_place(good, ka, kb)
    if len(good) < MIN_MATCHES:
        raise AlignmentError(f"only {len(good)} matching features (need {MIN_MATCHES}): another scene, or too little overlap?")
    pa = np.float32([ka[m.queryIdx].pt for m in good])
    pb = np.float32([kb[m.trainIdx].pt for m in good])
    sim, inliers = cv2.estimateAffinePartial2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=3.0, maxIters=5000)
    n_in = 0 if inliers is None else int(inliers.sum())
    if sim is None or n_in < MIN_MATCHES:
        raise AlignmentError(f"only {n_in} of {len(good)} feature matches agree on one geometry: another scene, or too little overlap?")
    work_scale = float(np.sqrt(abs(np.linalg.det(sim[:, :2]))))
    if not 1 / 16 <= work_scale <= 16:
        raise AlignmentError(f"the feature matches agree only on a scale of {work_scale:.3g}: another scene?")
    # full-resolution RAW -> half grid -> work grid -> (sim) -> RGB work grid -> RGB
    to_work = a_map @ np.linalg.inv(_HALF_TO_FULL)
    full = np.linalg.inv(b_map) @ np.vstack([sim, [0, 0, 1]]) @ to_work
    h, w = 2 * raw_half.shape[0], 2 * raw_half.shape[1]
    base = identity_map((h, w))
    found = CameraMap(full[:2], base.radial, base.center, base.norm)
    if abs(found.rotation_deg) > MAX_ROTATION_DEG:
        raise AlignmentError(
            f"the RGB is rotated by {found.rotation_deg:.0f} degrees against the RAW and no EXIF orientation says so"
        )
    return found, {"matches": len(good), "inliers": n_in}


def _half_grid_points(shape) -> np.ndarray:
    """(h * w, 2) full-resolution (x, y) of every sample of a half-resolution grid of `shape`."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return _half_to_full(np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64))


def warp_to_raw(rgb: np.ndarray, m: CameraMap, points: np.ndarray, shape, interpolation=cv2.INTER_LINEAR, border=1.0):
    """`rgb` sampled at m(points) for (n, 2) RAW points laid out as `shape`; and where that stays `border` px inside it."""
    q = m(points).astype(np.float32)
    mx, my = q[:, 0].reshape(shape), q[:, 1].reshape(shape)
    out = cv2.remap(rgb, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    h, w = rgb.shape[:2]
    valid = (mx >= border) & (my >= border) & (mx <= w - 1 - border) & (my <= h - 1 - border)
    return out, valid


def simulate_camera_rgb(rgb: np.ndarray, m: CameraMap, shape) -> np.ndarray:
    """What a camera would write for a render `rgb` on the RAW grid under the map `m`: an RGB of `shape` (h, w).

    Each output pixel q takes the render at m.inverse(q) (bicubic): a test bed with known geometry.
    """
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    p = m.inverse(np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)).astype(np.float32)
    out = cv2.remap(rgb, p[:, 0].reshape(h, w), p[:, 1].reshape(h, w), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return out


def tile_size(shape) -> int:
    """Side of the refinement tiles for a half-resolution grid of `shape`: 64, 32 on small frames, 16 on tiny ones.

    Tiny frames (N900, 124 x 168 half-resolution px) get 16 px tiles: ~100 of them instead of 15 at
    32 px, and reaching 8 px closer to the corners, where the radial terms act.
    """
    side = min(shape)
    return _TILE if side >= 6 * _TILE else _TILE // 2 if side >= 6 * _TILE // 2 else _TILE // 4


def _tiles(raw_half: np.ndarray, warped: np.ndarray, valid: np.ndarray):
    """(y, x, raw tile, warped tile) of every fully valid tile whose two images both have texture."""
    h, w = raw_half.shape
    t = tile_size(raw_half.shape)
    for y in range(0, h - t + 1, 3 * t // 4):
        for x in range(0, w - t + 1, 3 * t // 4):
            if not valid[y : y + t, x : x + t].all():
                continue
            a, b = raw_half[y : y + t, x : x + t], warped[y : y + t, x : x + t]
            if a.std() > 1e-3 and b.std() > 1e-3:
                yield y, x, a, b


def _phase_shift(a: np.ndarray, b: np.ndarray, window: np.ndarray):
    """Shift s (x, y) with b(x) = a(x - s) by phase correlation (any size up to a quarter tile), or None."""
    # copies: OpenCV windows its inputs in place, and the tiles are views of the whole images
    (dx, dy), response = cv2.phaseCorrelate(a.copy(), b.copy(), window)
    return (dx, dy) if response >= _MIN_RESPONSE and max(abs(dx), abs(dy)) < len(a) / 4 else None


def _standardise(t: np.ndarray) -> np.ndarray:
    return (t - t.mean()) / t.std()


def _gradient_shift(a: np.ndarray, b: np.ndarray, _window=None):
    """Shift s (x, y) with b(x) = a(x - s) by one symmetric Lucas-Kanade step (precise below ~1 px), or None.

    Both tiles are standardised first, so a local gain or offset (local tone mapping) drops out.
    """
    a, b = _standardise(a), _standardise(b)
    gy, gx = np.gradient(0.5 * (a + b))
    g = np.stack([gx[2:-2, 2:-2].ravel(), gy[2:-2, 2:-2].ravel()], axis=-1)
    d = (b - a)[2:-2, 2:-2].ravel()
    normal = g.T @ g
    low, high = np.linalg.eigvalsh(normal)
    if low < 1e-3 * len(d) or low < 0.05 * high:  # flat, or texture in one direction only: no defined shift
        return None
    s = -np.linalg.solve(normal, g.T @ d)
    return tuple(s) if np.max(np.abs(s)) < 1.0 else None


def _tile_shifts(raw_half: np.ndarray, warped: np.ndarray, valid: np.ndarray, estimator=_phase_shift):
    """Centres (half grid, (x, y)) of the measurable tiles and the shift of `warped` against `raw_half` in each."""
    t = tile_size(raw_half.shape)
    window = cv2.createHanningWindow((t, t), cv2.CV_64F)
    centres, shifts = [], []
    for y, x, a, b in _tiles(raw_half, warped, valid):
        s = estimator(a, b, window)
        if s is not None:
            centres.append((x + (t - 1) / 2, y + (t - 1) / 2))
            shifts.append(s)
    return np.array(centres, np.float64).reshape(-1, 2), np.array(shifts, np.float64).reshape(-1, 2)


# The radial terms a fit may use (indices into CameraMap.radial), fewest first; BIC picks one set.
_RADIAL_SETS = ((), (0,), (0, 1), (0, 2), (0, 1, 2))


def _with(m: CameraMap, affine: np.ndarray, active, values) -> CameraMap:
    """`m` with this affine and the radial terms `active` set to `values`, the others 0."""
    radial = np.zeros(RADIAL_TERMS)
    radial[list(active)] = values
    return CameraMap(np.asarray(affine, np.float64).reshape(2, 3), tuple(radial), m.center, m.norm)


def _fit(m: CameraMap, raw_pts: np.ndarray, rgb_pts: np.ndarray, radial: bool):
    """Robust least squares (soft L1 at 0.5 RGB px) of the map's affine and, if `radial`, the radial terms; (map, active terms).

    With `radial`, each set of _RADIAL_SETS is fitted and the one of least BIC (on the robust cost)
    kept: the three radial functions are nearly collinear over a partly measured frame, and a term
    the tiles do not need bends the map where no tile is, at the corners (N900: 10 px).
    """
    p0 = m.params()
    sets = _RADIAL_SETS if radial else (tuple(i for i in range(RADIAL_TERMS) if m.radial[i] != 0.0),)
    best = None
    for active in sets:
        idx = list(active)

        def residual(p, idx=idx):
            fixed = p0[6:][idx] if not radial else p[6:]
            return (_with(m, p[:6], idx, fixed)(raw_pts) - rgb_pts).ravel()

        start = np.concatenate([p0[:6], p0[6:][idx]]) if radial else p0[:6]
        sol = scipy.optimize.least_squares(residual, start, loss="soft_l1", f_scale=0.5, x_scale="jac")
        n = len(sol.fun)
        bic = n * np.log(max(2.0 * sol.cost, 1e-12) / n) + len(start) * np.log(n)
        if best is None or bic < best[0]:
            values = sol.x[6:] if radial else p0[6:][idx]
            best = (bic, _with(m, sol.x[:6], idx, values), active)
    return best[1], best[2]


def _half_to_full(points: np.ndarray) -> np.ndarray:
    """(n, 2) half-resolution grid points -> full-resolution RAW points."""
    return 2.0 * points + 0.5


def _point_pairs(m: CameraMap, centres: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RAW and RGB full-resolution points of measured tiles: warped(x) = raw(x - s), so the RAW at c - s is where m sends c."""
    return _half_to_full(centres - shifts), m(_half_to_full(centres))


# Refinement rounds on tile shifts: (estimator, fit the radial terms too). Phase correlation reaches
# shifts up to a quarter tile, so it takes the coarse map's errors (several px at the corners,
# where the radial terms act), but its sub-pixel estimates are biased towards 0: each round removes
# only part of what is left (Infinite-ISP Indoor1, barrel: 2.9 -> 0.8 -> 0.37 px median). The
# Lucas-Kanade rounds (unbiased below ~1 px) finish: 0.37 -> 0.09 -> 0.03 -> 0.02.
_ROUNDS = (
    (_phase_shift, False),
    (_phase_shift, True),
    (_phase_shift, True),
    (_gradient_shift, True),
    (_gradient_shift, True),
    (_gradient_shift, True),
)
# Few tiles (a small frame) leave the point fit loose: then `dense_fit`, where every pixel votes,
# finishes (N900, 15 tiles: 1.6 -> 0.9 px at the corners). With many it is not needed and can hurt:
# it also weighs flat, out-of-focus regions (Canon 550D, 157 tiles, distorted: 0.15 -> 0.95 px).
_DENSE_BELOW_TILES = 60
_ALIAS_SIGMA = 1.0 / np.sqrt(12.0)  # RAW half-resolution px: a 2 RAW px box's standard deviation
_LCN_SIGMA = 8.0  # local contrast normalisation scale, RAW half-resolution px
_BLUR_SIGMA = 1.0  # against sensor noise and JPEG blocks
# A weak pull of k2 towards 0 in the dense fit: on small or flat frames k1 and k2 trade off, and
# an unconstrained k2 bends the map at the corners, beyond the measured region (N900: 2.6 -> 0.9 px).
_K2_PRIOR = 1.0


def local_contrast(img: np.ndarray, px: float = 1.0) -> np.ndarray:
    """(img - local mean) / local std, after a light blur; `px` = the image's pixels per RAW half-resolution pixel.

    What a tone curve or a local gain leaves of an image; the scales (_BLUR_SIGMA, _LCN_SIGMA) are in
    RAW half-resolution px, so the RAW and an RGB of another resolution are normalised alike.
    """
    x = cv2.GaussianBlur(np.asarray(img, np.float32), (0, 0), _BLUR_SIGMA * px)
    mean = cv2.GaussianBlur(x, (0, 0), _LCN_SIGMA * px)
    var = np.maximum(cv2.GaussianBlur(x * x, (0, 0), _LCN_SIGMA * px) - mean * mean, 0)
    # Flat regions are damped (their normalised noise would drown the edges): the floor is the median variance.
    return (x - mean) / np.sqrt(var + np.median(var) + 1e-6)


def dense_fit(m: CameraMap, raw_half: np.ndarray, rgb_lum: np.ndarray, stride: int = 2, active=(0, 1, 2)) -> CameraMap:
    """The map (affine + radial) minimising |LCN(rgb)(m(p)) - LCN(raw)(p)| over the RAW's half grid (robust least squares, weak k2 prior).

    A direct, dense refinement: every pixel votes, through the local-contrast-normalised images
    (insensitive to the tone curve and to local gains), so no per-tile estimator's bias enters.
    `stride` subsamples the grid points for speed; only the radial terms `active` (indices) are
    fitted, the others stay 0. Starts from a map within about a pixel.
    """
    a = local_contrast(raw_half)[::stride, ::stride].ravel()
    b = local_contrast(rgb_lum, 2.0 * m.scale)
    ys, xs = np.mgrid[0 : raw_half.shape[0] : stride, 0 : raw_half.shape[1] : stride]
    points = _half_to_full(np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64))
    h, w = b.shape
    inside = np.all((m(points) >= 8) & (m(points) <= np.array([w - 9, h - 9])), axis=-1)
    n = int(inside.sum()) // 512 * 512  # remap takes at most 32767 rows: the points as rows of 512
    points, a = points[inside][:n], a[inside][:n]

    idx = list(active)
    weights = np.sqrt(len(a)) * _K2_PRIOR * np.array([float(i != 0) for i in idx])  # k2 and k_r, not k1

    def residual(p):
        q = _with(m, p[:6], idx, p[6:])(points).astype(np.float32).reshape(-1, 512, 2)
        data = cv2.remap(b, q[..., 0], q[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).ravel() - a
        return np.concatenate([data, weights * p[6:]])

    start = np.concatenate([m.params()[:6], np.asarray(m.radial)[idx]])
    sol = scipy.optimize.least_squares(residual, start, loss="soft_l1", f_scale=0.5, x_scale="jac", diff_step=1e-4, max_nfev=50)
    return _with(m, sol.x[:6], idx, sol.x[6:])


def refine_map(raw_half: np.ndarray, rgb_lum: np.ndarray, m: CameraMap):
    """The map refined (affine + radial terms), and the remaining misalignment measured per tile.

    Rounds of tile shifts (_ROUNDS: each round warps the RGB onto the RAW's half grid with the
    current map, measures every textured tile's remaining shift, by phase correlation and then by a
    Lucas-Kanade step, and refits the map to the RAW <-> RGB point pairs with the radial terms BIC
    picks), then, on small frames (few tiles), `dense_fit` of the same terms. A last warp with the final map measures what is
    left per tile (Lucas-Kanade step on standardised tiles): (n,) shifts in full-resolution RAW px.
    """
    rgb_lum = np.asarray(rgb_lum, np.float32)  # OpenCV interpolates float32 more precisely than float64
    raw_half = np.asarray(raw_half, np.float64)
    # The RGB is sampled at the half grid's points, one per 2 RAW px, whose RAW values are 2x2 means:
    # unfiltered it aliases into a shift the tiles cannot see (Huawei P9, crop only: 0.15 px everywhere,
    # measured residual 0.04 px). A Gaussian of the 2 px box's spread (2 / sqrt(12) RAW px) stands in.
    rgb_blur = cv2.GaussianBlur(rgb_lum, (0, 0), _ALIAS_SIGMA * 2.0 * m.scale)
    points = _half_grid_points(raw_half.shape)
    active, n_tiles = (), 0
    for estimator, radial in (*_ROUNDS, (_gradient_shift, None)):
        if radial is None and n_tiles < _DENSE_BELOW_TILES:
            m = dense_fit(m, raw_half, rgb_lum, active=active)
        warped, valid = warp_to_raw(rgb_blur, m, points, raw_half.shape)
        centres, shifts = _tile_shifts(raw_half, warped.astype(np.float64), valid, estimator)
        if len(centres) < _MIN_TILES:
            raise AlignmentError(f"only {len(centres)} image tiles match after the coarse fit (need {_MIN_TILES})")
        if radial is None:
            return m, 2.0 * np.linalg.norm(shifts, axis=-1)
        m, active = _fit(m, *_point_pairs(m, centres, shifts), radial=radial)
        n_tiles = len(centres)
