import cv2
import numpy as np

from revisp_tf.report import plots


def _report(methods, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return {m: {"images": [{"name": f"{k}_0", "psnr": float(v)} for k, v in enumerate(rng.normal(30, 3, n))]} for m in methods}


def test_scatter_win_counts_are_counted_from_the_per_image_rows():
    report = _report(["model", "upi", "mosaic", "fitted"])
    png, counts = plots.scatter_png(report)
    model = np.array([r["psnr"] for r in report["model"]["images"]])
    want = {b: int(np.count_nonzero(model > np.array([r["psnr"] for r in report[b]["images"]]))) for b in ("upi", "fitted")}
    assert counts == want and 0 < want["upi"] < 40
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] > picture.shape[0]  # two plots side by side: upi, fitted


def test_no_scatter_without_the_model_or_a_baseline_to_plot_against():
    assert plots.scatter_png(_report(["model", "mosaic"])) is None
    assert plots.scatter_png(_report(["upi", "mosaic"])) is None
    _, counts = plots.scatter_png(_report(["upi", "mosaic"]), key="upi") or (None, None)
    assert counts is None  # upi is not plotted against itself
