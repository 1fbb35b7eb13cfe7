"""Demosaic Net port against stored PyTorch outputs (scripts/make_demosaicnet_fixture.py), no torch needed."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from revisp_tf import weights as weights_lib
from revisp_tf.models import build_demosaicnet, demosaicnet

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demosaicnet_reference.npz"
IMAGES = ["canon_550d", "nokia_n900"]
TOLERANCE = 1e-4
LOST = 31  # pad=False loses 31 px per side


@pytest.fixture(scope="module")
def model():
    """Built through the public name the data issue asked for: `revisp_tf.models.build_demosaicnet`."""
    return build_demosaicnet("pretrained")


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _run(model, packed):
    return np.asarray(model(packed[None].astype(np.float32)))[0]


def test_parameter_count_and_layers(model):
    assert model.count_params() == demosaicnet.PARAMETERS == 560_886
    assert demosaicnet.build_demosaicnet(None).count_params() == 560_886
    widths = [model.get_layer(f"conv{i}").filters for i in range(1, 16)]
    assert widths == [64] * 14 + [128]


def test_pack_conv_kernel_picks_the_grbg_tile(model):
    # The released pack conv is a fixed selector: its four outputs read R, G, B, G from the GRBG tile
    # positions (0,1), (0,0), (1,0), (1,1). Checks the (out, in, kh, kw) -> (kh, kw, in, out) transpose.
    want = np.zeros((2, 2, 3, 4), np.float32)
    for out, (dy, dx, colour) in enumerate([(0, 1, 0), (0, 0, 1), (1, 0, 2), (1, 1, 1)]):
        want[dy, dx, colour, out] = 1.0
    np.testing.assert_array_equal(model.get_layer("pack_mosaic").kernel.numpy(), want)


@pytest.mark.parametrize("name", IMAGES)
def test_matches_pytorch_on_real_raw(model, reference, name):
    packed, full, valid = (reference[f"{name}_{k}"] for k in ("packed", "full", "valid"))
    got = _run(model, packed)
    assert got.shape == (2 * packed.shape[0], 2 * packed.shape[1], 3)  # full size, odd packed sizes too (N900: 59x71)
    assert np.abs(got - full).max() <= TOLERANCE
    # The interior equals PyTorch pad=False on the unpadded mosaic (no padding involved at all).
    h, w = got.shape[:2]
    assert np.abs(got[LOST : h - LOST, LOST + 1 : w - LOST - 1] - valid).max() <= TOLERANCE


@pytest.mark.parametrize("name", IMAGES)
def test_channel_permutation_is_not_a_cfa_conversion(model, reference, name):
    # Proves the comparison can fail: swapping packed channels (the GRBG/RGGB trap) instead of
    # shifting the mosaic by a column must be far off the PyTorch reference.
    packed, full = reference[f"{name}_packed"], reference[f"{name}_full"]
    trap = packed[..., [1, 0, 3, 2]]
    assert np.abs(_run(model, trap) - full).max() > 100 * TOLERANCE


def test_odd_crop_is_translation_consistent(model, reference):
    packed, full = reference["canon_550d_packed"], reference["canon_550d_full"]
    top, left, h, w = 3, 5, 41, 43  # odd packed offset and size
    got = _run(model, packed[top : top + h, left : left + w])
    assert got.shape == (2 * h, 2 * w, 3)
    m = LOST + 1  # pixels whose receptive field stays inside the crop
    want = full[2 * top + m : 2 * (top + h) - m, 2 * left + m : 2 * (left + w) - m]
    assert np.abs(got[m:-m, m:-m] - want).max() <= TOLERANCE


def test_tiny_input_mirrors_tiles_like_numpy_reflect(model, reference):
    # Smaller than the 16-tile border: the mirror repeats, as np.pad(mode="reflect") does.
    tiny = reference["nokia_n900_packed"][20:25, 30:37]
    pad = demosaicnet.BORDER_TILES
    got = _run(model, tiny)
    padded = _run(model, np.pad(tiny, ((pad, pad), (pad, pad), (0, 0)), mode="reflect"))
    assert got.shape == (10, 14, 3)
    np.testing.assert_allclose(got, padded[2 * pad : -2 * pad, 2 * pad : -2 * pad], atol=1e-5)


def test_demosaic_convenience(reference):
    packed, full = reference["nokia_n900_packed"], reference["nokia_n900_full"]
    got = demosaicnet.demosaic(packed)  # unbatched NumPy in, tensor out
    assert got.shape == full.shape
    assert np.abs(got.numpy() - full).max() <= TOLERANCE
    assert demosaicnet._pretrained() is demosaicnet._pretrained()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        demosaicnet.demosaic(packed * 4.0)
    with pytest.raises(ValueError, match="4 channels"):
        demosaicnet.demosaic(packed[..., :3])


def test_keras_file_round_trip(model, reference, tmp_path):
    path = tmp_path / "demosaicnet.keras"
    model.save(path)
    packed = reference["canon_550d_packed"][:20, :24]
    np.testing.assert_array_equal(_run(keras.models.load_model(path), packed), _run(model, packed))


def test_sha256_mismatch_raises(tmp_path, monkeypatch):
    name = demosaicnet.WEIGHTS_FILE
    shutil.copy(weights_lib.checked_path(name), tmp_path / name)
    (tmp_path / "MANIFEST.json").write_text(json.dumps({name: weights_lib.read_manifest()[name]}))
    monkeypatch.setattr(weights_lib, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(weights_lib, "MANIFEST", tmp_path / "MANIFEST.json")
    with open(tmp_path / name, "r+b") as f:  # flip one byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="sha256"):
        demosaicnet.build_demosaicnet("pretrained")


def test_bad_weights_argument():
    with pytest.raises(ValueError, match="pretrained"):
        demosaicnet.build_demosaicnet("imagenet")
