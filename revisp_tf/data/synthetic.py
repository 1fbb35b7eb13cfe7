"""Synthetic (RGB, RAW) pairs from the sample photos scikit-image ships, in the AIM 2022 layout.

Each source photo is one scene. A patch is a random crop (scaled, flipped) of it, taken as
sRGB scene content; `unprocess` with the scene's random camera turns it into a clean linear
RAW (10-bit, RGGB); the simple forward ISP renders the RGB from that RAW with a random
exposure gain that clips highlights, and the stored RAW gets sensor noise on top. Since the
bilinear demosaic is exact at every sample site, the RGB and the packed RAW share one pixel
grid: RGB (H, W) <-> packed (H/2, W/2, 4).

Files: `{scene}_{k}.jpg|png` (8-bit sRGB), `{scene}_{k}.npy` (packed RGGB uint16 in
`PROJECT_10BIT` stored units) and `meta.json` (seed, cameras, per-patch crop, exposure, noise,
overexposed share). Scenes are integers, as in the challenge; `meta.json` names their sources.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from revisp_tf.io.images import atomic_write, write_npy, write_rgb
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.mask import LUMA_THRESHOLD, overexposure_mask
from revisp_tf.isp.process import process
from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.isp.unprocess import add_noise, sample_noise_levels, sample_params, unprocess

# Colour photos that skimage.data loads from inside the package, without pooch or a network.
SOURCE_SCENES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "immunohistochemistry",
    "retina",
    "hubble_deep_field",
)
RGB_FORMATS = ("jpg", "png")
JPEG_QUALITY = 95
# Daylight phone shots are far less noisy than the paper's low-light range (1e-4 .. 0.012).
DAYLIGHT_SHOT_RANGE = (1e-4, 1e-3)
SCALE_RANGE = (0.35, 1.0)  # crop side = patch / scale, so < 1 zooms out of the source
# log(exposure) ~ N(mean, std): most patches near the source brightness, a tail strongly over-exposed.
LOG_EXPOSURE_MEAN, LOG_EXPOSURE_STD = 0.3, 0.4
# Clean and noisy RAW saturate at the sensor's white level, in model units.
WHITE = PROJECT_10BIT.white_level / PROJECT_10BIT.normaliser
# Streams of the per-(seed, scene, patch) seeds, so adding one random draw never shifts another.
_CAMERA, _PATCH, _NOISE_LEVELS, _NOISE = range(4)


@dataclasses.dataclass(frozen=True)
class PatchSpec:
    """Where a patch comes from in its source and how it is exposed."""

    top: int
    left: int
    size: int  # side of the square crop in source pixels, resized to the patch
    flip_lr: bool
    flip_ud: bool
    exposure: float


def child_seed(*keys: int) -> int:
    """A 32-bit seed derived from integer keys (seed, scene, patch, stream)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def load_source(name: str) -> np.ndarray:
    """A scikit-image sample photo as float32 RGB (H, W, 3) in [0, 1]."""
    if name not in SOURCE_SCENES:
        raise ValueError(f"unknown source scene {name!r}; expected one of {', '.join(SOURCE_SCENES)}")
    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity); the left view only
        img = img[0]
    return img.astype(np.float32) / np.float32(255.0)


def sample_patch_spec(seed: int, source_shape: tuple[int, ...], patch: int) -> PatchSpec:
    """Random crop box, flips and exposure for one patch, deterministic given `seed`."""
    rng = np.random.default_rng(seed)
    h, w = source_shape[:2]
    size = int(min(round(patch / rng.uniform(*SCALE_RANGE)), h, w))
    return PatchSpec(
        top=int(rng.integers(0, h - size + 1)),
        left=int(rng.integers(0, w - size + 1)),
        size=size,
        flip_lr=bool(rng.integers(2)),
        flip_ud=bool(rng.integers(2)),
        exposure=float(np.exp(rng.normal(LOG_EXPOSURE_MEAN, LOG_EXPOSURE_STD))),
    )


def cut_patch(source: np.ndarray, spec: PatchSpec, patch: int) -> np.ndarray:
    """Crops, resizes (area-averaging when shrinking) and flips one patch of `source`."""
    crop = source[spec.top : spec.top + spec.size, spec.left : spec.left + spec.size]
    interp = cv2.INTER_AREA if spec.size >= patch else cv2.INTER_LINEAR
    out = np.clip(cv2.resize(crop, (patch, patch), interpolation=interp), 0.0, 1.0)
    if spec.flip_lr:
        out = out[:, ::-1]
    if spec.flip_ud:
        out = out[::-1]
    return np.ascontiguousarray(out)


def clean_raw_units(lin) -> np.ndarray:
    """Linear camera RGB -> packed RGGB mosaic clipped to the white level and quantised, in model units."""
    packed = np.clip(mosaic(lin).numpy(), 0.0, WHITE)
    return PROJECT_10BIT.to_model_units(PROJECT_10BIT.to_stored(packed))


def render_rgb8(raw_units, params, exposure) -> np.ndarray:
    """Forward ISP of packed RAW in model units -> uint8 sRGB."""
    return np.round(process(raw_units, params, exposure=exposure).numpy() * 255.0).astype(np.uint8)


def _check_args(count: int, patch: int, rgb_format: str, scenes) -> None:
    if count < 1:
        raise ValueError(f"count: expected a positive number of pairs, got {count}")
    if patch < 2 or patch % 2:
        raise ValueError(f"patch: expected an even size >= 2 (whole 2x2 CFA tiles), got {patch}")
    if rgb_format not in RGB_FORMATS:
        raise ValueError(f"rgb_format: expected one of {', '.join(RGB_FORMATS)}, got {rgb_format!r}")
    for name in scenes:
        if name not in SOURCE_SCENES:
            raise ValueError(f"unknown source scene {name!r}; expected one of {', '.join(SOURCE_SCENES)}")


def make_synthetic_pairs(
    out_dir,
    count: int = 96,
    seed: int = 0,
    patch: int = 128,
    *,
    rgb_format: str = "jpg",
    noise: bool = True,
    scenes: tuple[str, ...] = SOURCE_SCENES,
) -> dict:
    """Writes `count` synthetic pairs to `out_dir` (created if needed) and returns the meta dict.

    Patches go round-robin over `scenes` (scene i of `scenes` is named `i`), so scene i gets
    patches k = 0, 1, ... Everything is deterministic given `seed`. `noise=False` stores the
    clean RAW the RGB was rendered from.
    """
    _check_args(count, patch, rgb_format, scenes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "seed": seed,
        "patch": patch,
        "rgb_format": rgb_format,
        "jpeg_quality": JPEG_QUALITY if rgb_format == "jpg" else None,
        "noise": noise,
        "sensor": PROJECT_10BIT.name,
        "cfa": PROJECT_10BIT.cfa,
        "overexposure_threshold_luma": LUMA_THRESHOLD,
        "scenes": {},
    }
    shares = []
    for scene, name in enumerate(scenes):
        n = len(range(scene, count, len(scenes)))
        if n == 0:
            continue
        source = load_source(name)
        params = sample_params(child_seed(seed, scene, 0, _CAMERA))
        specs = [sample_patch_spec(child_seed(seed, scene, k, _PATCH), source.shape, patch) for k in range(n)]
        rgb_src = np.stack([cut_patch(source, s, patch) for s in specs])
        raw = clean_raw_units(unprocess(rgb_src, params))
        rgb8 = render_rgb8(raw, params, [s.exposure for s in specs])
        over = overexposure_mask(rgb8.astype(np.float32) / np.float32(255.0)).numpy().mean(axis=(1, 2, 3))
        patches = []
        for k, spec in enumerate(specs):
            levels = sample_noise_levels(child_seed(seed, scene, k, _NOISE_LEVELS), DAYLIGHT_SHOT_RANGE) if noise else (0.0, 0.0)
            stored = raw[k]
            if noise:
                noisy = add_noise(raw[k], *levels, seed=child_seed(seed, scene, k, _NOISE)).numpy()
                stored = np.clip(noisy, 0.0, WHITE)
            write_rgb(out / f"{scene}_{k}.{rgb_format}", rgb8[k], jpeg_quality=JPEG_QUALITY)
            write_npy(out / f"{scene}_{k}.npy", PROJECT_10BIT.to_stored(stored))
            patches.append({"k": k, **dataclasses.asdict(spec), "shot_noise": levels[0], "read_noise": levels[1], "overexposed": float(over[k])})
            shares.append(float(over[k]))
        meta["scenes"][str(scene)] = {"source": f"skimage.data.{name}", "camera": params.to_dict(), "patches": patches}
    meta["overexposed"] = {"mean": float(np.mean(shares)), "median": float(np.median(shares)), "max": float(np.max(shares))}
    with atomic_write(out / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return meta
