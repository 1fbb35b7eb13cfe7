"""scripts/benchmark_fidelity.py: the source split, the table rows and the ordering, on a made-up report."""

import importlib.util
import json
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


def _entry(psnr, oe_values):
    """An evaluate_pairs entry whose images have the given OE PSNRs (NaN: no OE pixel)."""
    finite = [v for v in oe_values if not math.isnan(v)]
    images = [
        {"name": f"s_{k}", "psnr": psnr, "ssim": 0.5, "psnr_oe": v, "psnr_noe": psnr + 1}
        for k, v in enumerate(oe_values)
    ]
    oe = sum(finite) / len(finite) if finite else math.nan
    return {"psnr": psnr, "ssim": 0.5, "psnr_oe": oe, "psnr_noe": psnr + 1, "images": images}


def test_split_sources_keeps_order_and_rejects_unknown(bf):
    files = ["a.dng", "b.raw", "c.png", "d.dng"]
    assert bf.split_sources(files, ("d.dng", "b.raw")) == (["a.dng", "c.png"], ["b.raw", "d.dng"])
    with pytest.raises(ValueError, match="x.dng"):
        bf.split_sources(files, ("x.dng",))


def test_real_test_sources_are_in_the_table(bf):
    train, test = bf.split_sources(sorted(bf.make_real_pairs.FILES), bf.TEST_SOURCES)
    assert len(test) == 2 and len(train) == len(bf.make_real_pairs.FILES) - 2
    assert not set(train) & set(test)


def test_table_rows_count_oe_images_and_order_variants(bf):
    nan = math.nan
    baselines = {"set": {"mosaic": _entry(15.0, [nan, 9.0, nan]), "upi": _entry(20.0, [nan, 11.0, nan])}}
    models = {
        "set": {
            "dual": {"score": _entry(24.0, [nan, 14.0, 12.0]), "params": 200, "train_s": 3.0},
            "baseline": {"score": _entry(25.5, [nan, nan, nan]), "params": 100, "train_s": 1.0},
        }
    }
    rows = bf.table_rows(baselines, models)
    assert [(r["method"], r["n_oe_images"], r["n_images"]) for r in rows] == [
        ("mosaic", 1, 3), ("upi", 1, 3), ("baseline", 0, 3), ("dual", 2, 3)
    ]
    assert rows[3]["psnr_oe"] == 13.0 and rows[3]["params"] == 200
    assert bf.ordering(rows, "set") == "baseline > dual"
    lines = bf.format_table(rows).splitlines()
    assert lines[2].split() == ["set", "mosaic", "-", "15.00", "0.5000", "9.00", "16.00", "1/3"]
    assert lines[4].split() == ["set", "baseline", "100", "25.50", "0.5000", "-", "26.50", "0/3"]


def test_overexposed_share_reads_meta(bf, tmp_path):
    patches = lambda *shares: {"patches": [{"overexposed": v} for v in shares]}  # noqa: E731
    meta = {"scenes": {"a": patches(0.0, 0.3), "b": patches(0.1)}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    share = bf.overexposed_share(tmp_path)
    assert share["patches"] == 3
    assert share["pixels"] == pytest.approx(0.4 / 3)
    assert share["patches_with_oe"] == pytest.approx(2 / 3)
