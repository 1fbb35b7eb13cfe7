"""Converts demosaicnet's pretrained Bayer weights to `saved_models/demosaicnet_bayer.npz`.

Run from the repository root with the reference venv (torch + demosaicnet 0.0.14):

    TF_CPP_MIN_LOG_LEVEL=3 .venv-ref/bin/python scripts/convert_demosaicnet_weights.py

It reads `demosaicnet/data/bayer.pth` from the installed package, moves every kernel to
Keras channels-last layout, writes one array per Keras variable path (`conv1/kernel`, ...),
records the file with its sha256 in `saved_models/MANIFEST.json` (both under $REVISP_TF_MODELS
if set), then loads it back through
`build_demosaicnet("pretrained")` and prints the max abs error against the PyTorch model on
a real RAW crop (Canon 550D colour chart, ../shared/realdata). Exits non-zero above 1e-4.

An .npz rather than Keras' `.weights.h5`: it is keyed by explicit names and checked array by
array (shape, nothing missing, nothing left over), does not depend on Keras' internal h5 layout
or layer auto-naming, and opens with NumPy alone (e.g. on the mobile side).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path

import demosaicnet
import numpy as np
import torch

import _torch_demosaicnet as ref
from revisp_tf import weights as weights_lib
from revisp_tf.models import demosaicnet as keras_demosaicnet

SOURCE = Path(demosaicnet.__file__).resolve().parent / "data" / "bayer.pth"
TOLERANCE = 1e-4
CHART_CROP = dict(top=660, left=880, size=128)  # colour-chart patches and their edges


def keras_arrays(state_dict: dict) -> dict[str, np.ndarray]:
    """PyTorch state dict -> {Keras variable path: channels-last array}."""
    arrays = {}
    for key, tensor in state_dict.items():
        module, kind = key.rsplit(".", 1)
        layer = module.rsplit(".", 1)[-1]  # "main_processor.conv3" -> "conv3": the Keras layer names
        value = tensor.numpy().astype(np.float32)
        if kind == "weight" and layer == "upsampler":
            value = np.transpose(value[:, 0], (1, 2, 0))  # ConvTranspose (C, 1, kh, kw) -> (kh, kw, C)
        elif kind == "weight":
            value = np.transpose(value, (2, 3, 1, 0))  # Conv (out, in, kh, kw) -> (kh, kw, in, out)
        arrays[f"{layer}/{'kernel' if kind == 'weight' else 'bias'}"] = value
    return arrays


def convert(out: Path) -> None:
    """Writes the .npz (temporary name, then rename) after checking it loads into the Keras model."""
    state_dict = torch.load(SOURCE, map_location="cpu", weights_only=True)
    arrays = keras_arrays(state_dict)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    model = keras_demosaicnet.build_demosaicnet(weights=None)
    keras_demosaicnet.load_weights(model, tmp)
    count = model.count_params()
    print(f"parameters: {count:,}")
    if count != keras_demosaicnet.PARAMETERS:
        tmp.unlink()
        raise SystemExit(f"expected {keras_demosaicnet.PARAMETERS:,} parameters, got {count:,}")
    tmp.replace(out)
    weights_lib.record(
        out,
        source="PyPI demosaicnet==0.0.14 demosaicnet/data/bayer.pth",
        source_sha256=weights_lib.sha256(SOURCE),
        licence="MIT",
        converter="scripts/convert_demosaicnet_weights.py",
        format="npz, one float32 array per Keras variable path, channels-last",
        parameters=count,
        torch_version=torch.__version__,
        demosaicnet_version=importlib.metadata.version("demosaicnet"),
    )
    print(f"wrote {out} and its MANIFEST entry")


def compare(realdata: Path) -> float:
    """Max abs error of the shipped Keras model against PyTorch on a real Canon 550D crop."""
    packed = ref.canon_crop(**CHART_CROP, realdata=realdata)
    model = ref.torch_model()
    expected_full = ref.reference_full(model, packed)
    expected_valid = ref.reference_valid(model, packed)
    got = np.asarray(keras_demosaicnet.build_demosaicnet("pretrained")(packed[None]))[0]
    rows, cols = ref.valid_window(*got.shape[:2])
    err_full = float(np.abs(got - expected_full).max())
    err_valid = float(np.abs(got[rows, cols] - expected_valid).max())
    print(
        f"Canon 550D crop {CHART_CROP}: max abs error {err_full:.3g} (tile-mirrored borders), "
        f"{err_valid:.3g} (interior vs pad=False on the unpadded mosaic)"
    )
    return max(err_full, err_valid)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=ref.REALDATA, help="the shared realdata folder")
    args = parser.parse_args(argv)
    convert(weights_lib.MODELS_DIR / keras_demosaicnet.WEIGHTS_FILE)
    err = compare(args.realdata)
    if err > TOLERANCE:
        print(f"FAILED: max abs error {err:.3g} > {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
