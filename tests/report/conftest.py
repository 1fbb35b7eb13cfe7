import pytest


@pytest.fixture(scope="session")
def small_report(tmp_path_factory):
    """A report of 8 synthetic 64 px pairs (every image gets a panel): (report dict, page path, examples)."""
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.data.synthetic import make_synthetic_pairs
    from revisp_tf.isp.sensor import PROJECT_10BIT
    from revisp_tf.models import build_reverse_isp, predict_bayer
    from revisp_tf.report import evaluate_with_report

    root = tmp_path_factory.mktemp("report_pairs")
    make_synthetic_pairs(root, count=8, seed=3, patch=64)
    examples = scan_pairs(root, sensor=PROJECT_10BIT)
    model = build_reverse_isp("single", base_filters=2, depth=2)
    report, page = evaluate_with_report(
        examples, PROJECT_10BIT, root / "report", lambda rgb: predict_bayer(model, rgb), progress=False, about={"data": str(root)}
    )
    return report, page, examples
