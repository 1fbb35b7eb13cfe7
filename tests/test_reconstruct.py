import numpy as np
import pytest
import rawpy
from click.testing import CliRunner

from revisp_tf.cli import main
from revisp_tf.io import write_rgb
from revisp_tf.isp.sensor import SAMSUNG_S7
from revisp_tf.models import build_reverse_isp
from revisp_tf.reconstruct import reconstruct_files


@pytest.fixture(scope="module")
def model():
    m = build_reverse_isp("single", base_filters=2, depth=2)
    head = m.get_layer("unet").get_layer("head")
    head.set_weights([np.zeros_like(head.kernel.numpy()), np.array([0.2, 0.5, 0.7], np.float32)])
    return m


def _image(tmp_path, name="a.png", h=40, w=56):
    rng = np.random.default_rng(0)
    return write_rgb(tmp_path / name, (rng.random((h, w, 3)) * 255).astype(np.uint8))


def test_npy_is_the_challenge_submission_format(model, tmp_path):
    [out] = reconstruct_files([_image(tmp_path)], model, tmp_path / "out", "npy", SAMSUNG_S7, progress=False)
    got = np.load(out)
    assert got.dtype == np.uint16 and got.shape == (20, 28, 4)
    # R = 0.2, G = 0.5, B = 0.7 everywhere: round(raw * 1024)
    np.testing.assert_array_equal(got[0, 0], [205, 512, 512, 717])


def test_dng_reads_back_in_libraw(model, tmp_path):
    [out] = reconstruct_files([_image(tmp_path)], model, tmp_path / "out", "dng", SAMSUNG_S7, progress=False)
    with rawpy.imread(str(out)) as raw:
        mosaic = raw.raw_image_visible.copy()
        assert "".join(raw.color_desc.decode()[i] for i in raw.raw_pattern.flatten()) == "RGGB"
        assert raw.white_level == 1023
    np.testing.assert_array_equal(mosaic[:2, :2], [[205, 512], [512, 717]])


def test_png_and_folder_input(model, tmp_path):
    (tmp_path / "in").mkdir()
    _image(tmp_path / "in", "x.png")
    [out] = reconstruct_files([tmp_path / "in"], model, tmp_path / "out", "png", SAMSUNG_S7, progress=False)
    assert out.name == "x.png" and out.stat().st_size > 0


def test_stitch_rebuilds_the_frame(model, tmp_path):
    (tmp_path / "grid").mkdir()
    for k in range(48):
        _image(tmp_path / "grid", f"7_{k}.png", 16, 16)
    [out] = reconstruct_files([tmp_path / "grid"], model, tmp_path / "out", "npy", SAMSUNG_S7, stitch=True, progress=False)
    assert out.name == "7.npy" and np.load(out).shape == (48, 64, 4)


def _cli(*args):
    return CliRunner().invoke(main, ["infer", *map(str, args)])


def test_bad_inputs_leave_no_output(model, tmp_path):
    path = tmp_path / "m.keras"
    model.save(path)
    odd = _image(tmp_path, "odd.png", 41, 56)
    result = _cli(odd, "--model", path, "--out", tmp_path / "out")
    assert result.exit_code != 0 and f"{odd}: 56x41 px" in result.output
    truncated = tmp_path / "t.jpg"
    full = _image(tmp_path, "full.jpg").read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    result = _cli(truncated, "--model", path, "--out", tmp_path / "out2")
    assert result.exit_code != 0 and str(truncated) in result.output
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").iterdir())
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"PK\x03\x04 not really")
    result = _cli(_image(tmp_path), "--model", bogus, "--out", tmp_path / "out3")
    assert result.exit_code != 0 and "not a readable Keras model" in result.output
    result = _cli(tmp_path / "missing.png", "--model", path, "--out", tmp_path / "out4")
    assert result.exit_code != 0 and "no such file" in result.output
