import base64
import re

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from revisp_tf.io.images import read_rgb
from revisp_tf.scoring.evaluate import evaluate_pairs
from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.report import evaluation, stats


def _table_names(page: str, table: str) -> list[str]:
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<tr><td>(.*?)</td>", body)]


def _figure_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<figure id="img-(\d+)">', page)]


def test_small_set_every_image_has_a_panel_and_a_row_worst_first(small_report):
    report, page_path, examples = small_report
    page = page_path.read_text()
    rows = report["model"]["images"]
    worst_first = list(np.argsort([r["psnr"] for r in rows], kind="stable"))
    assert _figure_ids(page) == worst_first
    assert _table_names(page, "images") == [rows[i]["name"] for i in worst_first]
    # The baselines' numbers are evaluate_pairs' own.
    plain = evaluate_pairs(examples, PROJECT_10BIT, progress=False)
    for m in ("upi", "mosaic"):
        np.testing.assert_equal(report[m], plain[m])
    summary = re.search(r'<table id="summary">.*?</table>', page, re.S).group(0)
    assert f"<td>model</td><td data-v=\"{report['model']['psnr']!r}\">{report['model']['psnr']:.2f}</td>" in summary


def test_page_is_one_self_contained_file(small_report):
    _, page_path, _ = small_report
    page = page_path.read_text()
    assert not re.search(r"https?://|<link|@import|url\(", page)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 8 + 2  # a panel per image, the scatter, the error curves
    for src in sources:
        mime, data = re.fullmatch(r"data:image/(png|jpeg);base64,(.+)", src).groups()
        picture = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and min(picture.shape[:2]) > 100
    assert len(re.findall(r"<script>", page)) == 1


def test_large_set_draws_the_chosen_24_only(tmp_path, monkeypatch):
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.data.synthetic import make_synthetic_pairs

    make_synthetic_pairs(tmp_path / "pairs", count=30, seed=2, patch=32)
    examples = scan_pairs(tmp_path / "pairs", sensor=PROJECT_10BIT)
    drawn = []
    render = evaluation.render_panel
    monkeypatch.setattr(evaluation, "render_panel", lambda *a, **k: drawn.append(a[0]) or render(*a, **k))
    report, page_path = evaluation.evaluate_with_report(examples, PROJECT_10BIT, tmp_path / "report", progress=False)
    page = page_path.read_text()
    psnr = np.array([r["psnr"] for r in report["upi"]["images"]])  # no model: ranked by the first baseline
    ids = _figure_ids(page)
    assert len(drawn) == 24 and ids == [i for i, _ in stats.choose_images(psnr)]
    assert ids[:12] == list(np.argsort(psnr)[:12]) and ids[12:16] == list(np.argsort(psnr)[::-1][:4])
    for i, rgb in zip(ids, drawn):  # the second pass drew the chosen images, in order
        np.testing.assert_array_equal(rgb, read_rgb(examples[i].rgb))
    assert len(_table_names(page, "images")) == 30
    assert "No scatter" in page


def test_cli_eval_report(small_report, tmp_path):
    from revisp_tf.cli import main

    _, page_path, examples = small_report
    data = examples[0].rgb.parent
    result = CliRunner().invoke(main, ["eval", "--no-model", "--data", str(data), "--sensor", "project",
                                       "--out", str(tmp_path / "r.json"), "--report", str(tmp_path / "html")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"html report: {tmp_path / 'html' / 'index.html'}"
    assert len(_table_names((tmp_path / "html" / "index.html").read_text(), "images")) == 8


def test_cli_eval_report_into_a_file_is_refused_before_anything_is_written(small_report, tmp_path):
    from revisp_tf.cli import main

    _, _, examples = small_report
    (tmp_path / "taken").write_text("a file")
    result = CliRunner().invoke(main, ["eval", "--no-model", "--data", str(examples[0].rgb.parent), "--sensor", "project",
                                       "--out", str(tmp_path / "r.json"), "--report", str(tmp_path / "taken")])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for '--report': Directory '{tmp_path / 'taken'}' is a file."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_nothing_to_evaluate_is_refused(tmp_path):
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluation.evaluate_with_report([], PROJECT_10BIT, tmp_path, None, ())
