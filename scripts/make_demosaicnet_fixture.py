"""Writes `tests/fixtures/demosaicnet_reference.npz`: PyTorch Demosaic Net outputs on real RAW crops.

Run from the repository root with the reference venv (torch + demosaicnet 0.0.14):

    TF_CPP_MIN_LOG_LEVEL=3 .venv-ref/bin/python scripts/make_demosaicnet_fixture.py

For each crop (packed RGGB, [0, 1]) it stores, as float32:
  `{name}_packed`  the input, (h, w, 4);
  `{name}_full`    PyTorch `pad=False` on the mosaic mirrored by 16 whole tiles, cropped to
                   the input's pixels: what the Keras port must return everywhere, (2h, 2w, 3);
  `{name}_valid`   PyTorch `pad=False` on the unpadded GRBG mosaic: no padding at all, the
                   interior [31 : 2h - 31, 32 : 2w - 32] of the Keras output;
and `{name}_source`, a line saying where the crop comes from. Crops come from
../shared/realdata (Canon 550D DNG, RGGB; Nokia N900 16-bit PNG, GRBG shifted to RGGB).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import _torch_demosaicnet as ref

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "demosaicnet_reference.npz"
# The Canon crop shows the "colorchecker" lettering next to a patch edge (high frequencies);
# the N900 crop is the dog's head, sized so the packed input is odd in both axes (59 x 71).
CANON = dict(top=760, left=1280, size=128)
N900 = dict(top=30, left=70, height=118, width=144)


def crops(realdata: Path) -> dict[str, tuple[np.ndarray, str]]:
    """{name: (packed RGGB crop, description)}."""
    return {
        "canon_550d": (
            ref.canon_crop(**CANON, realdata=realdata),
            f"{ref.CANON_550D['file']} visible mosaic rows {CANON['top']}:+{CANON['size']}, "
            f"cols {CANON['left']}:+{CANON['size']}, RGGB, "
            f"black {ref.CANON_550D['black']}, white {ref.CANON_550D['white']}",
        ),
        "nokia_n900": (
            ref.n900_crop(**N900, realdata=realdata),
            f"{ref.NOKIA_N900['file']} rows {N900['top']}:+{N900['height']}, cols {N900['left']}:+{N900['width']}, "
            "GRBG shifted to RGGB (one column dropped per side), "
            f"black {ref.NOKIA_N900['black']}, white {ref.NOKIA_N900['white']}",
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=ref.REALDATA, help="the shared realdata folder")
    args = parser.parse_args(argv)
    model = ref.torch_model()
    arrays = {}
    for name, (packed, source) in crops(args.realdata).items():
        arrays[f"{name}_packed"] = packed.astype(np.float32)
        arrays[f"{name}_full"] = ref.reference_full(model, packed)
        arrays[f"{name}_valid"] = ref.reference_valid(model, packed)
        arrays[f"{name}_source"] = np.array(source)
        shapes = ", ".join(f"{k} {arrays[f'{name}_{k}'].shape}" for k in ("packed", "full", "valid"))
        print(f"{name}: {shapes}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_name(OUT.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
