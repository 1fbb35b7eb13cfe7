import json
import socket

import numpy as np
import pytest

from revisp_tf.data import synthetic
from revisp_tf.io.images import read_raw_npy, read_rgb
from revisp_tf.isp import bayer
from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.isp.unprocess import UnprocessParams, unprocess

SMALL = dict(count=16, seed=3, patch=32)


def _make(tmp_path_factory, name, **kw):
    out = tmp_path_factory.mktemp(name)
    return out, synthetic.make_synthetic_pairs(out, **{**SMALL, **kw})


@pytest.fixture(scope="module")
def clean_png(tmp_path_factory):
    return _make(tmp_path_factory, "clean", rgb_format="png", noise=False)


@pytest.fixture(scope="module")
def noisy_png(tmp_path_factory):
    return _make(tmp_path_factory, "noisy", rgb_format="png")


def _pairs(meta):
    """(scene, k, camera, patch meta) for every pair in `meta`."""
    for scene, s in meta["scenes"].items():
        for p in s["patches"]:
            yield scene, p["k"], UnprocessParams(**s["camera"]), p


def test_sources_load_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    for name in synthetic.SOURCE_SCENES:
        img = synthetic.load_source(name)
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[-1] == 3, name
        assert min(img.shape[:2]) >= 256 and 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05, name


def np_srgb_to_linear(x):
    """Inverse smoothstep then gamma 2.2 (reference, monotone increasing)."""
    return np.maximum(0.5 - np.sin(np.arcsin(1.0 - 2.0 * np.clip(x, 0, 1)) / 3.0), 1e-8) ** 2.2


def raw_interval_from_rgb(rgb8, cam, exposure):
    """Bounds on the linear camera RGB that renders to `rgb8`, from its 8-bit rounding interval.

    Where the forward ISP clips nothing it is invertible: cam = rgb2cam @ f(srgb) / (gains * exposure),
    f monotone; interval arithmetic over srgb in [q - 0.5, q + 0.5] / 255 bounds every channel.
    """
    lo, hi = np_srgb_to_linear(rgb8 - 0.5 / 255), np_srgb_to_linear(rgb8 + 0.5 / 255)
    a = np.asarray(cam.rgb2cam) / (cam.rgb_gain * np.array([cam.red_gain, 1.0, cam.blue_gain]) * exposure)[:, None]
    pos, neg = np.maximum(a, 0), np.minimum(a, 0)
    return lo @ pos.T + hi @ neg.T, hi @ pos.T + lo @ neg.T


def test_layout_and_meta(clean_png):
    out, meta = clean_png
    names = sorted(p.name for p in out.iterdir())
    want = sorted([f"{s}_{k}.{ext}" for s, k, _, _ in _pairs(meta) for ext in ("png", "npy")] + ["meta.json"])
    assert names == want and len(want) == 2 * SMALL["count"] + 1
    assert json.loads((out / "meta.json").read_text()) == meta
    assert sorted(meta["scenes"]) == [str(i) for i in range(8)]
    for scene, k, _, p in _pairs(meta):
        rgb = read_rgb(out / f"{scene}_{k}.png")
        raw = read_raw_npy(out / f"{scene}_{k}.npy", (16, 16, 4))
        assert rgb.shape == (32, 32, 3) and raw.dtype == np.uint16 and raw.max() <= PROJECT_10BIT.white_level
        y = rgb @ np.array([0.299, 0.587, 0.114])
        assert np.mean(y >= 0.978) == pytest.approx(p["overexposed"], abs=1e-9)


def test_every_raw_sample_renders_to_the_stored_rgb(clean_png):
    # The RGB pixel and the RAW sample at the same place come from one linear pixel: wherever the
    # forward ISP clips nothing, the RAW lies inside the interval its 8-bit RGB allows (+ 10-bit rounding).
    out, meta = clean_png
    checked = 0
    for scene, k, cam, p in _pairs(meta):
        rgb = read_rgb(out / f"{scene}_{k}.png").astype(np.float64)
        raw = PROJECT_10BIT.to_model_units(read_raw_npy(out / f"{scene}_{k}.npy")).astype(np.float64)
        lo, hi = raw_interval_from_rgb(rgb, cam, p["exposure"])
        gains = cam.rgb_gain * np.array([cam.red_gain, 1.0, cam.blue_gain]) * p["exposure"]
        unclipped = np.all(
            (rgb > 1.5 / 255) & (rgb < 253.5 / 255) & (lo > 0) & (hi * gains < 1), axis=-1, keepdims=True
        )
        keep = bayer.mosaic(np.repeat(unclipped, 3, -1).astype(np.float32)).numpy() > 0
        half_step = 0.5 / PROJECT_10BIT.normaliser + 1e-6
        lo_s, hi_s = bayer.mosaic(lo).numpy()[keep], bayer.mosaic(hi).numpy()[keep]
        assert np.all((raw[keep] >= lo_s - half_step) & (raw[keep] <= hi_s + half_step)), (scene, k)
        checked += keep.sum()
    assert checked > 0.5 * SMALL["count"] * 16 * 16 * 4


def test_raw_and_rgb_share_one_pixel_grid(clean_png):
    # Inverting the ISP on the RGB lands on the stored RAW at zero shift, not at a one-pixel (CFA) shift.
    out, meta = clean_png
    errs = {0: [], 1: []}
    for scene, k, cam, p in _pairs(meta):
        rgb = read_rgb(out / f"{scene}_{k}.png")
        raw = PROJECT_10BIT.to_model_units(read_raw_npy(out / f"{scene}_{k}.npy"))
        lin = unprocess(rgb, cam).numpy() / p["exposure"]
        keep = bayer.mosaic(np.repeat((rgb.max(-1, keepdims=True) < 0.9), 3, -1).astype(np.float32)).numpy() > 0
        for shift in errs:
            errs[shift].append(np.abs(bayer.mosaic(np.roll(lin, shift, axis=1)).numpy() - raw)[keep])
    e0, e1 = np.median(np.concatenate(errs[0])), np.median(np.concatenate(errs[1]))
    assert e0 < 2e-3 and e1 > 5 * e0, (e0, e1)


def test_jpeg_pairs_equal_png_pairs_up_to_compression(clean_png, tmp_path):
    out, meta = clean_png
    jpeg = synthetic.make_synthetic_pairs(tmp_path, **SMALL, noise=False)
    assert jpeg["rgb_format"] == "jpg" and jpeg["jpeg_quality"] == 95
    assert {**jpeg, "rgb_format": "png", "jpeg_quality": None} == meta
    for scene, k, _, _ in _pairs(meta):
        assert (tmp_path / f"{scene}_{k}.npy").read_bytes() == (out / f"{scene}_{k}.npy").read_bytes()
        err = np.abs(read_rgb(tmp_path / f"{scene}_{k}.jpg") - read_rgb(out / f"{scene}_{k}.png")).mean()
        assert err < 6 / 255, (scene, k, err * 255)


def test_noise_leaves_the_rgb_alone_and_has_the_stated_variance(clean_png, noisy_png):
    (clean_dir, clean_meta), (noisy_dir, noisy_meta) = clean_png, noisy_png
    z = []
    for scene, k, _, p in _pairs(noisy_meta):
        stem = f"{scene}_{k}"
        assert (clean_dir / f"{stem}.png").read_bytes() == (noisy_dir / f"{stem}.png").read_bytes()
        clean = PROJECT_10BIT.to_model_units(np.load(clean_dir / f"{stem}.npy")).astype(np.float64)
        noisy = PROJECT_10BIT.to_model_units(np.load(noisy_dir / f"{stem}.npy")).astype(np.float64)
        assert 1e-4 <= p["shot_noise"] <= 1e-3
        inside = (noisy > 0) & (noisy < PROJECT_10BIT.white_level / PROJECT_10BIT.normaliser) & (clean > 0.02)
        z.append(((noisy - clean) / np.sqrt(clean * p["shot_noise"] + p["read_noise"]))[inside])
    z = np.concatenate(z)
    assert abs(z.mean()) < 0.05 and z.std() == pytest.approx(1.0, abs=0.06)
    assert [p["overexposed"] for *_, p in _pairs(clean_meta)] == [p["overexposed"] for *_, p in _pairs(noisy_meta)]


def test_deterministic_given_the_seed(noisy_png, tmp_path):
    out, meta = noisy_png
    again = synthetic.make_synthetic_pairs(tmp_path / "again", **SMALL, rgb_format="png")
    assert again == meta
    for f in out.iterdir():
        assert (tmp_path / "again" / f.name).read_bytes() == f.read_bytes(), f.name
    other = synthetic.make_synthetic_pairs(tmp_path / "other", **{**SMALL, "seed": 4}, rgb_format="png")
    assert other["scenes"]["0"]["camera"] != meta["scenes"]["0"]["camera"]
    assert not np.array_equal(np.load(tmp_path / "other" / "0_0.npy"), np.load(out / "0_0.npy"))


def test_default_jpeg_pairs_overexposed_share_in_range(tmp_path):
    meta = synthetic.make_synthetic_pairs(tmp_path, seed=0)  # the default: 96 pairs of 128 px, JPEG
    shares = np.array([p["overexposed"] for *_, p in _pairs(meta)])
    assert len(shares) == 96 and len(meta["scenes"]) == 8
    # Measured over seeds 0-9: mean 2.2-6.3 %, half the patches none, ~10 % of patches above 10 %.
    assert 0.01 <= shares.mean() <= 0.10
    assert np.median(shares) < 0.01 and shares.max() > 0.2 and np.mean(shares > 0.1) >= 0.03
    assert meta["overexposed"]["mean"] == pytest.approx(shares.mean())


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="count"):
        synthetic.make_synthetic_pairs(tmp_path, count=0)
    with pytest.raises(ValueError, match="even"):
        synthetic.make_synthetic_pairs(tmp_path, patch=33)
    with pytest.raises(ValueError, match="rgb_format"):
        synthetic.make_synthetic_pairs(tmp_path, rgb_format="tif")
    with pytest.raises(ValueError, match="unknown source scene"):
        synthetic.make_synthetic_pairs(tmp_path, scenes=("lily",))
    assert not any(tmp_path.iterdir())


def test_rerun_replaces_its_own_pairs_and_refuses_other_folders(tmp_path):
    out = tmp_path / "pairs"
    synthetic.make_synthetic_pairs(out, count=10, patch=16)
    (out / "0_0.demosaic.npy").write_bytes(b"ground truth of the old RAW")
    meta = synthetic.make_synthetic_pairs(out, count=3, patch=16, rgb_format="png")
    want = {f"{s}_{p['k']}.{ext}" for s, e in meta["scenes"].items() for p in e["patches"] for ext in ("png", "npy")}
    assert {p.name for p in out.iterdir()} == want | {"meta.json"} and len(want) == 6
    foreign = tmp_path / "aim22"
    foreign.mkdir()
    (foreign / "0_0.jpg").write_bytes(b"real data")
    with pytest.raises(ValueError, match="not empty"):
        synthetic.make_synthetic_pairs(foreign, count=1, patch=16)
    (foreign / "meta.json").write_text(json.dumps({"scenes": {}}))
    with pytest.raises(ValueError, match="not written by"):
        synthetic.make_synthetic_pairs(foreign, count=1, patch=16)
    assert (foreign / "0_0.jpg").read_bytes() == b"real data"


def test_a_run_killed_midway_is_redone_by_the_same_command(tmp_path):
    """kill -9 after the first scene (replacing an older, larger set): the same call then gives a clean set."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "pairs"
    synthetic.make_synthetic_pairs(out, count=10, patch=16, seed=1)
    script = (
        "import os, signal\n"
        "from revisp_tf.data import synthetic\n"
        "real = synthetic._write_scene\n"
        "def dying(*a, **k):\n"
        "    real(*a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "synthetic._write_scene = dying\n"
        f"synthetic.make_synthetic_pairs({str(out)!r}, count=4, patch=16, seed=3)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / synthetic.PARTIAL_NAME).exists() and not (out / "meta.json").exists()
    synthetic.make_synthetic_pairs(out, count=4, patch=16, seed=3)
    clean = tmp_path / "clean"
    synthetic.make_synthetic_pairs(clean, count=4, patch=16, seed=3)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    for p in clean.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


def test_each_patch_records_the_gains_its_rgb_was_rendered_with(clean_png):
    # RAW x the recorded wb x exposure gain is the white-balanced camera RGB the colour matrix and
    # tone curve saw: rgb2cam @ linear(sRGB), mosaiced, wherever nothing clipped. A patch's own
    # capture wins over its scene's (each patch has its own exposure).
    from revisp_tf.global_stage.fit import balanced_bayer
    from revisp_tf.io.metadata import patch_captures

    out, meta = clean_png
    pairs = list(_pairs(meta))
    captures = patch_captures([out / f"{scene}_{k}.png" for scene, k, _, _ in pairs])
    errs, unbalanced = [], []
    for (scene, k, cam, p), cap in zip(pairs, captures):
        assert cap.source == "synthetic camera" and cap.exposure_gain == pytest.approx(cam.rgb_gain * p["exposure"], rel=1e-12)
        rgb = read_rgb(out / f"{scene}_{k}.png").astype(np.float64)
        raw = PROJECT_10BIT.to_model_units(read_raw_npy(out / f"{scene}_{k}.npy")).astype(np.float64)
        seen = bayer.mosaic(np_srgb_to_linear(rgb) @ np.asarray(cam.rgb2cam).T).numpy()
        ok = (rgb.min(-1, keepdims=True) > 0.05) & (rgb.max(-1, keepdims=True) < 0.9)
        keep = bayer.mosaic(np.repeat(ok, 3, -1).astype(np.float32)).numpy() > 0
        errs.append(np.abs(balanced_bayer(raw, cap.wb, cap.exposure_gain) - seen)[keep] / seen[keep])
        unbalanced.append(np.abs(raw - seen)[keep] / seen[keep])
    assert np.median(np.concatenate(errs)) < 0.02 and np.median(np.concatenate(unbalanced)) > 0.2
    assert len({c.exposure_gain for c in captures}) == len(captures)
