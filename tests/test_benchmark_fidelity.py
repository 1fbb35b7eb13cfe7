"""scripts/benchmark_fidelity.py: the per-camera protocol's configs and its Markdown table, on a made-up report."""

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_fidelity.py"


@pytest.fixture(scope="module")
def bf():
    spec = importlib.util.spec_from_file_location("benchmark_fidelity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frames_are_in_the_real_pairs_table_and_pairs_are_same_camera(bf):
    assert set(bf.FRAMES.values()) <= set(bf.make_real_pairs.FILES)
    for a, b in bf.FRAME_PAIRS:
        assert a != b and bf.FRAMES[a].split("/")[0] == bf.FRAMES[b].split("/")[0]


def test_every_trained_method_shares_the_budget(bf, tmp_path):
    args = bf.parse_args(["--steps", "7", "--width", "4", "--crop", "64", "--batch", "2"])
    cfgs = {m: bf.experiment(m, 1, tmp_path, args) for m in bf.TRAINED}
    for m, cfg in cfgs.items():
        variant, stage = bf.TRAINED[m]
        assert (cfg.model.variant, cfg.model.global_stage) == (variant, stage)
        assert (cfg.runtime.steps_per_epoch, cfg.total_epochs, cfg.model.base_filters) == (7, 1, 4)
        assert (cfg.data.crop, cfg.data.batch_size, cfg.runtime.seed) == (64, 2, 1)
        assert [p.loss for p in cfg.optim.phases] == ["mse_bayer"]
        assert cfg.data.val_dir == str(tmp_path)  # validation never sees the test frame


def test_markdown_gives_means_and_seed_spread(bf):
    s = lambda p, oe=math.nan: {"psnr": p, "ssim": 0.9, "psnr_oe": oe, "psnr_noe": p}  # noqa: E731
    report = {"matrix": {"libraw": {
        "A → B": {"upi": s(30.0), "dual+global": s(36.0, 20.0) | {"psnr_spread": 1.0}},
        "B → A": {"upi": s(32.0), "dual+global": s(38.0) | {"psnr_spread": 0.0}},
    }}}
    lines = bf.markdown(report).splitlines()
    assert lines[2] == "| train → test | upi | dual+global |"
    assert lines[4] == "| A → B | 30.00 | 36.00 ±0.50 |"
    assert lines[6] == "| **mean** | 31.00 | 37.00 |"
    oe = lines.index("### Overexposed pixels (OE PSNR, dB, mean over seeds)")
    assert lines[oe + 2] == "| ISP | train → test | upi | dual+global |"
    assert lines[oe + 4:] == ["| libraw | A → B | - | 20.00 |"]  # B → A has no OE pixels, UPI's OE is NaN


def test_recompressed_frame_is_the_jpeg_round_trip_stored_lossless(bf, tmp_path):
    import cv2
    import numpy as np

    src, dst = tmp_path / "frame", tmp_path / "frame-q85"
    src.mkdir()
    y, x = np.mgrid[:64, :96]
    rgb = np.stack([x * 2, y * 3, (x * y) % 256], -1).astype(np.uint8)
    cv2.imwrite(str(src / "a_0.png"), rgb)
    np.save(src / "a_0.npy", np.arange(12, dtype=np.uint16).reshape(2, 3, 2))
    (src / "meta.json").write_text('{"a_0": {"y": 0, "x": 0}}')
    (src / "frame.json").write_text("{}")
    bf.recompressed_frame(src, dst, 85)
    want = cv2.imdecode(cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_COLOR)
    got = cv2.imread(str(dst / "a_0.png"), cv2.IMREAD_COLOR)
    assert np.array_equal(got, want) and np.abs(got.astype(int) - rgb).max() > 0  # compressed, stored exactly
    assert np.array_equal(np.load(dst / "a_0.npy"), np.load(src / "a_0.npy"))
    assert sorted(p.name for p in dst.iterdir()) == ["a_0.npy", "a_0.png", "meta.json", "recompressed.json"]
    (dst / "a_0.png").unlink()
    bf.recompressed_frame(src, dst, 85)  # same stamp: reused as it is
    assert not (dst / "a_0.png").exists()
    bf.recompressed_frame(src, dst, 70)  # another quality: made again
    assert (dst / "a_0.png").is_file()
