import numpy as np
import pytest
import rawpy
from click.testing import CliRunner

from revisp_tf.cli import main
from revisp_tf.infer.files import reconstruct_files
from revisp_tf.io.images import write_rgb
from revisp_tf.isp.sensor import SAMSUNG_S7
from revisp_tf.models import build_reverse_isp


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


def test_infer_streams_the_npy_band_by_band_and_jit_gives_the_same(tmp_path):
    """`infer --jit` on a frame of many tile rows: the .npy equals the stored form of the tiled result of the trained model."""
    from tests.lively import infer_tiled
    from tests.lively import generated_frame, lively_model

    model = lively_model("dual", depth=2)
    model.save(tmp_path / "m.keras")
    rgb8 = np.round(generated_frame(200, 296) * 255).astype(np.uint8)
    write_rgb(tmp_path / "f.png", rgb8)
    result = _cli(tmp_path / "f.png", "--model", tmp_path / "m.keras", "--out", tmp_path / "out", "--tile", 64,
                  "--overlap", 16, "--batch-size", 2, "--jit")
    assert result.exit_code == 0, result.output
    want = SAMSUNG_S7.to_stored(infer_tiled(model, rgb8.astype(np.float32) / 255, tile=64, overlap=16))
    got = np.load(tmp_path / "out" / "f.npy")
    assert got.dtype == np.uint16 and got.shape == (100, 148, 4)
    assert np.abs(got.astype(int) - want).max() <= 1 and (got != want).mean() < 1e-3  # rounding at .5 only


def test_streamed_npy_is_not_left_half_written(tmp_path):
    from revisp_tf.infer.files import write_npy_bands

    def bands():
        yield 0, np.full((3, 5, 4), 0.5, np.float32)
        raise RuntimeError("the model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        write_npy_bands(tmp_path / "x.npy", (6, 5, 4), bands(), SAMSUNG_S7)
    with pytest.raises(RuntimeError, match="3 of 6 rows"):
        write_npy_bands(tmp_path / "x.npy", (6, 5, 4), [(0, np.zeros((3, 5, 4), np.float32))], SAMSUNG_S7)
    assert not list(tmp_path.iterdir())
    path = write_npy_bands(tmp_path / "x.npy", (4, 5, 4), [(0, np.full((1, 5, 4), 0.25)), (1, np.ones((3, 5, 4)))], SAMSUNG_S7)
    np.testing.assert_array_equal(np.load(path)[:, 0, 0], [256, 1023, 1023, 1023])  # 1.0 is the 10-bit files' 1023


def test_global_stage_model_gets_its_frame_context_per_tile(tmp_path):
    """A model with a 'context' input: each tile's context window equals the slice of the whole frame's context."""
    from revisp_tf.global_stage.context import frame_context
    from tests.lively import infer_tiled
    from tests.lively import enliven, generated_frame

    model = enliven(build_reverse_isp("dual", base_filters=4, depth=2, global_stage="upi"))
    rgb8 = np.round(generated_frame(160, 224) * 255).astype(np.uint8)
    path = write_rgb(tmp_path / "f.png", rgb8)
    [out] = reconstruct_files([path], model, tmp_path / "out", "npy", SAMSUNG_S7, tile=64, overlap=16, progress=False)
    rgb = rgb8.astype(np.float32) / 255
    want = SAMSUNG_S7.to_stored(infer_tiled(model, rgb, tile=64, overlap=16, context=frame_context(rgb)))
    np.testing.assert_array_equal(np.load(out), want)


def test_png_and_dng_are_written_band_by_band_and_equal_the_whole_frame_writers(tmp_path, monkeypatch):
    from revisp_tf.infer import files as reconstruct
    from revisp_tf.io.dng import write_dng
    from revisp_tf.io.images import read_rgb
    from revisp_tf.isp.process import visualize_raw

    monkeypatch.setattr(reconstruct, "_PNG_BLOCK_ROWS", 5)  # many blocks: their demosaic borders must not show
    rng = np.random.default_rng(5)
    packed = (0.05 + 0.9 * rng.random((23, 17, 4))).astype(np.float32)
    packed[..., 0] *= 0.5  # a colour cast for the gray world to remove
    bands = lambda: ((y, packed[y : y + 4]) for y in range(0, 23, 4))  # noqa: E731
    png = reconstruct.write_png_bands(tmp_path / "x.png", packed.shape, bands())
    want = np.round(np.asarray(visualize_raw(packed)) * 255)  # the whole frame at once
    got = read_rgb(png) * 255
    assert got.shape == want.shape and np.abs(got - want).max() <= 1  # gains summed in float64 vs float32: at most 1
    assert np.mean(got == want) > 0.999
    rgb = (rng.random((46, 34, 3)) * 220).astype(np.uint8)
    dng = reconstruct.write_dng_bands(tmp_path / "x.dng", packed.shape, bands(), SAMSUNG_S7, rgb=rgb)
    whole = write_dng(tmp_path / "whole.dng", packed, SAMSUNG_S7, rgb=rgb)
    assert dng.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.dng", "x.dng", "x.png"]
