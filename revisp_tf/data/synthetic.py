"""Synthetic (RGB, RAW) pairs from the sample photos scikit-image ships, in the AIM 2022 layout.

Each source photo is one scene. A patch is a random crop (scaled, flipped) of it, taken as
sRGB scene content; `unprocess` with the scene's random camera turns it into full-resolution
linear camera RGB, clipped at the white level and quantised to 10 bits. The RGB is rendered
from that image by the simple forward ISP with a random exposure gain that clips highlights;
the RAW is its RGGB mosaic, plus sensor noise. So RGB (H, W) and packed RAW (H/2, W/2, 4)
share one pixel grid, and every RAW sample is a channel of the very pixel the RGB was
rendered from. (Rendering from the full-resolution image is an ideal demosaic: a bilinear
one leaves zipper and colour fringes that no phone ISP shows.)

Files: `{scene}_{k}.jpg|png` (8-bit sRGB), `{scene}_{k}.npy` (packed RGGB uint16 in
`PROJECT_10BIT` stored units) and `meta.json` (seed, cameras, per-patch crop, exposure, noise,
overexposed share, and the gains applied as the patch's capture metadata). Scenes are integers,
as in the challenge; `meta.json` names their sources.
`meta.json` is written last, so its presence means the set is complete. A run first writes
`.meta.partial.json` (the files it will replace or write) and removes it at the end: a run that
was killed leaves that file, and the same command then recognises the folder and starts it over.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from revisp_tf.checks import check_choice
from revisp_tf.choices import RGB_FORMATS
from revisp_tf.data.layout import META_NAME
from revisp_tf.data.scan import demosaic_path
from revisp_tf.io.atomic import atomic_write
from revisp_tf.io.images import write_npy, write_rgb
from revisp_tf.io.metadata import CaptureMetadata
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.mask import LUMA_THRESHOLD, overexposure_mask
from revisp_tf.isp.process import process
from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.isp.unprocess import (
    add_noise,
    sample_noise_levels,
    sample_params,
    unprocess,
)

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
GENERATOR = "revisp_tf.data.synthetic"
PARTIAL_NAME = ".meta.partial.json"
JPEG_QUALITY = 95
# Daylight phone shots are far less noisy than the paper's low-light range (1e-4 .. 0.012).
DAYLIGHT_SHOT_RANGE = (1e-4, 1e-3)
SCALE_RANGE = (0.35, 1.0)  # crop side = patch / scale, so < 1 zooms out of the source
# log(exposure) ~ N(mean, std): median gain 1.35, about half the patches clip nothing, a tail clips a lot.
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
    check_choice("source scene", name, SOURCE_SCENES)
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


def sensor_linear(lin) -> np.ndarray:
    """Linear camera RGB clipped to the white level and quantised to the sensor's stored steps, in model units."""
    return PROJECT_10BIT.to_model_units(PROJECT_10BIT.to_stored(np.clip(np.asarray(lin), 0.0, WHITE)))


def patch_capture(params, exposure: float) -> CaptureMetadata:
    """The gains the forward ISP applied to a patch (`process`): the camera's white balance, and
    its brightening times the patch's exposure as the exposure gain."""
    return CaptureMetadata(
        wb=(params.red_gain, 1.0, params.blue_gain), exposure_gain=params.rgb_gain * float(exposure), source="synthetic camera"
    )


def render_rgb8(lin, params, exposure) -> np.ndarray:
    """Forward ISP of full-resolution linear camera RGB -> uint8 sRGB."""
    return np.round(process(lin, params, exposure=exposure).numpy() * 255.0).astype(np.uint8)


def _check_args(count: int, patch: int, rgb_format: str, scenes) -> None:
    if count < 1:
        raise ValueError(f"count: expected a positive number of pairs, got {count}")
    if patch < 2 or patch % 2:
        raise ValueError(f"patch: expected an even size >= 2 (whole 2x2 CFA tiles), got {patch}")
    if rgb_format not in RGB_FORMATS:
        raise ValueError(f"rgb_format: expected one of {', '.join(RGB_FORMATS)}, got {rgb_format!r}")
    for name in scenes:
        check_choice("source scene", name, SOURCE_SCENES)


def _previous_files(out: Path) -> tuple[set[str], set[str]]:
    """(pair files, derived demosaic files) an earlier run left in `out`; ValueError if `out` holds anything else."""
    path = out / META_NAME
    partial = out / PARTIAL_NAME
    if partial.exists():  # a run killed before it finished: the files it listed are ours to redo
        try:
            names = set(json.loads(partial.read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{partial}: cannot read it ({e}); delete the folder's pairs and it") from None
        return names, set()
    if not path.exists():
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out}: folder is not empty and has no {META_NAME}; expected a new or empty folder")
        return set(), set()
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{path}: cannot read it as JSON ({e}); expected the {META_NAME} synthetic pairs write"
        ) from None
    if not isinstance(old, dict) or old.get("generator") != GENERATOR:
        raise ValueError(
            f"{path}: not written by {GENERATOR}; expected a new or empty folder so no other pairs are overwritten"
        )
    fmt = old.get("rgb_format", "jpg")
    stems = [f"{scene}_{p['k']}" for scene, s in old.get("scenes", {}).items() for p in s.get("patches", [])]
    return {f"{stem}.{ext}" for stem in stems for ext in (fmt, "npy")}, {
        demosaic_path(Path(f"{stem}.npy")).name for stem in stems
    }


def _write_scene(out: Path, scene: int, name: str, n: int, seed: int, patch: int, rgb_format: str, noise: bool) -> dict:
    """Writes the `n` pairs of one scene; returns its meta.json entry."""
    source = load_source(name)
    params = sample_params(child_seed(seed, scene, 0, _CAMERA))
    specs = [sample_patch_spec(child_seed(seed, scene, k, _PATCH), source.shape, patch) for k in range(n)]
    lin = sensor_linear(unprocess(np.stack([cut_patch(source, s, patch) for s in specs]), params).numpy())
    rgb8 = render_rgb8(lin, params, [s.exposure for s in specs])
    raw = mosaic(lin).numpy()
    # Measured on the 8-bit RGB before any JPEG compression.
    over = overexposure_mask(rgb8.astype(np.float32) / np.float32(255.0)).numpy().mean(axis=(1, 2, 3))
    patches = []
    for k, spec in enumerate(specs):
        shot, read = 0.0, 0.0
        if noise:
            shot, read = sample_noise_levels(child_seed(seed, scene, k, _NOISE_LEVELS), DAYLIGHT_SHOT_RANGE)
            raw[k] = np.clip(add_noise(raw[k], shot, read, seed=child_seed(seed, scene, k, _NOISE)).numpy(), 0.0, WHITE)
        write_rgb(out / f"{scene}_{k}.{rgb_format}", rgb8[k], jpeg_quality=JPEG_QUALITY)
        write_npy(out / f"{scene}_{k}.npy", PROJECT_10BIT.to_stored(raw[k]))
        patches.append(
            {"k": k, **dataclasses.asdict(spec), "shot_noise": shot, "read_noise": read, "overexposed": float(over[k]),
             "capture": patch_capture(params, spec.exposure).to_json()}
        )
    return {"source": f"skimage.data.{name}", "camera": params.to_dict(), "patches": patches}


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
    clean RAW, the exact mosaic of the image the RGB was rendered from. `out_dir` must be new,
    empty, or an earlier output of this function (whose pairs are then replaced).
    """
    _check_args(count, patch, rgb_format, scenes)
    out = Path(out_dir)
    old_pairs, old_derived = _previous_files(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "generator": GENERATOR,
        "layout": "AIM 2022 reverse ISP: {scene}_{k}.jpg (or .png) + {scene}_{k}.npy, packed RGGB (h, w, 4)",
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
    planned = {
        f"{scene}_{k}.{ext}" for scene in range(len(scenes)) for k in range(len(range(scene, count, len(scenes))))
        for ext in (rgb_format, "npy")
    }
    with atomic_write(out / PARTIAL_NAME) as tmp:
        tmp.write_text(json.dumps({"generator": GENERATOR, "files": sorted(planned | old_pairs | old_derived)}))
    (out / META_NAME).unlink(missing_ok=True)  # meta.json present <=> the set is complete
    for scene, name in enumerate(scenes):
        n = len(range(scene, count, len(scenes)))
        if n:
            meta["scenes"][str(scene)] = _write_scene(out, scene, name, n, seed, patch, rgb_format, noise)
    shares = [p["overexposed"] for s in meta["scenes"].values() for p in s["patches"]]
    meta["overexposed"] = {
        "mean": float(np.mean(shares)),
        "median": float(np.median(shares)),
        "max": float(np.max(shares)),
    }
    with atomic_write(out / META_NAME) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    written = {
        f"{s}_{p['k']}.{ext}" for s, e in meta["scenes"].items() for p in e["patches"] for ext in (rgb_format, "npy")
    }
    # Ground truth derived from the old RAW (prepare_gt's demosaic files) is stale for every pair.
    for name in (old_pairs - written) | old_derived:
        (out / name).unlink(missing_ok=True)
    (out / PARTIAL_NAME).unlink()
    return meta
