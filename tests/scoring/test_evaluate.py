import json

import numpy as np
import pytest
from click.testing import CliRunner

from revisp_tf.cli import main
from revisp_tf.data.scan import scan_pairs
from revisp_tf.io.images import read_rgb
from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.scoring import evaluate, scorer
from tests import scorer_reference


def challenge_scorer(ref_path, res):
    """The AIM 2022 scorer's numbers for one image, from the files themselves."""
    ref = scorer_reference.load(ref_path)
    return scorer_reference.psnr(ref, res), scorer_reference.ssim(ref, res)


def _check_against_scorer(data_dir):
    examples = scan_pairs(data_dir, sensor=PROJECT_10BIT)
    report = evaluate.evaluate_pairs(examples[:3], PROJECT_10BIT, progress=False)
    assert set(report) == {"upi", "mosaic"}
    for ex, row in zip(examples[:3], report["mosaic"]["images"]):
        rgb = read_rgb(ex.rgb)
        naive = np.stack([rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1], rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]], -1)
        submitted = np.minimum(np.round(naive.astype(float) * 1024), 1023).astype(np.uint16)  # the .npy infer writes
        psnr, ssim = challenge_scorer(ex.raw, submitted / 1024.0)
        assert row["psnr"] == pytest.approx(psnr, abs=1e-9)
        assert row["ssim"] == pytest.approx(ssim, abs=1e-9)
    return report


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    from revisp_tf.data.synthetic import make_synthetic_pairs

    root = tmp_path_factory.mktemp("synthetic_eval")
    make_synthetic_pairs(root, count=8, seed=1, patch=64)
    return root


def test_metric_equals_the_scorer_on_synthetic_pairs(synthetic_dir):
    report = _check_against_scorer(synthetic_dir)
    # The synthetic RAW was unprocessed with Brooks et al.'s model: UPI inverts it far better than a naive mosaic.
    assert report["upi"]["psnr"] > report["mosaic"]["psnr"] + 5


def test_metric_equals_the_scorer_on_a_real_raw_pair(realdata, tmp_path):
    from revisp_tf.data.pairs import make_pairs_from_raw

    make_pairs_from_raw([realdata / "raw" / "canon_550d" / "colorchart.dng"], tmp_path, patch=256, progress=False)
    _check_against_scorer(tmp_path)


def test_oe_split_weights_samples_by_their_own_pixel():
    gt = np.zeros((12, 12, 4))
    pred = np.zeros((12, 12, 4))
    pred[0, 0, 0] = 0.5  # the only error, on an overexposed sample
    oe = np.zeros((12, 12, 4))
    oe[0, 0, 0] = 1
    scores = scorer.score(pred, gt, oe, PROJECT_10BIT)
    assert scores["psnr_oe"] == pytest.approx(10 * np.log10(1 / 0.25))
    assert scores["psnr_noe"] == 999.0


def test_empty_masks_are_nan_and_means_skip_them():
    gt = np.full((12, 12, 4), 0.5)
    all_oe = scorer.score(gt + 0.01, gt, np.ones(gt.shape), PROJECT_10BIT)
    none_oe = scorer.score(gt + 0.02, gt, np.zeros(gt.shape), PROJECT_10BIT)
    assert np.isnan(all_oe["psnr_noe"]) and np.isnan(none_oe["psnr_oe"])
    means = scorer.summarize([all_oe, none_oe])
    assert means["psnr_oe"] == all_oe["psnr_oe"] and means["psnr_noe"] == none_oe["psnr_noe"]
    assert means["psnr"] == pytest.approx((all_oe["psnr"] + none_oe["psnr"]) / 2)
    rows = scorer.score_batch(np.stack([gt + 0.01, gt + 0.02]), np.stack([gt, gt]), np.stack([np.ones(gt.shape), np.zeros(gt.shape)]), PROJECT_10BIT)
    np.testing.assert_equal(rows, [all_oe, none_oe])  # NaN equals NaN here


def test_p20_is_scored_as_the_scorer_scores_it(tmp_path):
    """Track 2: stored values up to 1023 are accepted; model units are / 1020, scoring units / 1024."""
    from revisp_tf.io.images import write_rgb
    from revisp_tf.isp.sensor import HUAWEI_P20

    rng = np.random.default_rng(5)
    rgb = rng.random((32, 32, 3)).astype(np.float32)
    write_rgb(tmp_path / "1_0.png", rgb)
    stored = rng.integers(60, 1024, (16, 16, 4)).astype(np.uint16)
    stored[0, 0, 0] = 1023
    np.save(tmp_path / "1_0.npy", stored)
    guess = np.full((16, 16, 4), 0.5, np.float32)  # model units: stored 510
    report = evaluate.evaluate_pairs(scan_pairs(tmp_path, sensor=HUAWEI_P20), HUAWEI_P20, lambda _: guess, baselines=(), progress=False)
    ref = stored / 1024.0
    res = np.full(ref.shape, 510 / 1024.0)
    assert report["model"]["psnr"] == pytest.approx(scorer_reference.psnr(ref, res), abs=1e-9)
    assert report["model"]["ssim"] == pytest.approx(scorer_reference.ssim(ref, res), abs=1e-9)


def test_cli_report(synthetic_dir, tmp_path):
    from revisp_tf.models import build_reverse_isp

    model = tmp_path / "m.keras"
    build_reverse_isp("single", base_filters=2, depth=2).save(model)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["eval", "--model", str(model), "--data", str(synthetic_dir), "--sensor", "project", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert all(m in result.output for m in ("model", "upi", "mosaic"))
    report = json.loads(out.read_text())
    for method in ("model", "upi", "mosaic"):
        assert {"psnr", "ssim", "psnr_oe", "psnr_noe", "ssim_skimage", "images"} <= set(report[method])
        assert len(report[method]["images"]) == 8
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "image,method,psnr,ssim,psnr_oe,psnr_noe,ssim_skimage" and len(rows) == 1 + 3 * 8


def test_cli_not_a_model(synthetic_dir, tmp_path):
    bogus = tmp_path / "m.keras"
    bogus.write_text("not a model")
    result = CliRunner().invoke(main, ["eval", "--model", str(bogus), "--data", str(synthetic_dir), "--sensor", "project"])
    assert result.exit_code != 0
    assert f"{bogus}: not a readable Keras model" in result.output


def test_report_writes_nan_as_null_and_leaves_names_alone(tmp_path):
    """NaN scores become JSON null; an image named "NaN_1" keeps its name (a text replace rewrote it)."""
    row = {"name": "NaN_1", "psnr": 30.0, "ssim": 0.9, "psnr_oe": float("nan"), "psnr_noe": 30.0, "ssim_skimage": 0.8}
    report = {"model": {**scorer.summarize([row]), "images": [row]}}
    scorer.write_report(report, tmp_path / "r.json")
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["model"]["images"][0]["name"] == "NaN_1"
    assert back["model"]["images"][0]["psnr_oe"] is None and back["model"]["psnr_oe"] is None
    assert back["model"]["psnr"] == 30.0
