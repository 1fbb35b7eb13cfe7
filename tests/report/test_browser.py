"""The report opened in a real browser: headless Chromium (Debian `chromium`), checked from the DOM it built.

How: the test writes a copy of the page with a small harness script as the first thing in
<head>. The harness records every error the page raises (window "error" events, which also
catch scripts that fail to parse and images that fail to load) and every console.error /
console.warn call; at the window's "load" event (every inline image decoded by then) it reads
each <img>'s naturalWidth and the image table's rows, clicks headers as a person would and
reads the rows again, then writes all that as JSON into a <pre> of the page. Chromium's
`--dump-dom` prints the DOM once the page has loaded and its scripts have run
(`--virtual-time-budget` lets them finish without waiting on the wall clock), so the test
reads the results from stdout. No browser-driving library, no debugging protocol: one
subprocess. The page itself is not changed: the harness lives only in the copy.
"""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--run-all-compositor-stages-before-draw", "--virtual-time-budget=20000"]

HARNESS = """<script>
window.__errors = [];
addEventListener("error", e => __errors.push(e.message || "could not load " + (e.target.src || e.target.tagName).slice(0, 80)), true);
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { __errors.push(level + ": " + args.join(" ")); original.apply(console, args); };
}
addEventListener("load", () => {
  const table = document.getElementById("images"), heads = table.tHead.rows[0].cells;
  const names = () => [...table.tBodies[0].rows].map(r => r.cells[0].textContent);
  const out = {images: [...document.images].map(i => i.naturalWidth), rows: table.tBodies[0].rows.length, initial: names()};
  heads[1].click(); out.psnrClicked = names();
  heads[0].click(); out.nameClicked = names();
  heads[0].click(); out.nameClickedTwice = names();
  out.resources = performance.getEntriesByType("resource").map(r => r.name).filter(n => !n.startsWith("data:"));
  out.errors = __errors;
  const pre = document.createElement("pre");
  pre.id = "harness";
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>"""


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def open_in_chromium(page: str, tmp_path) -> dict:
    """What the harness saw in Chromium of the page's HTML, from the dumped DOM."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: the browser test needs Debian's chromium (apt-get install chromium)")
    copy = tmp_path / "harnessed.html"
    copy.write_text(page.replace("<head>", "<head>" + HARNESS, 1))
    run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", copy.as_uri()],
                         capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="harness">(.*?)</pre>', run.stdout, re.S)
    assert found, f"no harness output (exit {run.returncode}): {run.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def test_report_in_chromium(small_report, tmp_path):
    report, page_path, _ = small_report
    seen = open_in_chromium(page_path.read_text(), tmp_path)
    assert seen["errors"] == [] and seen["resources"] == []
    assert len(seen["images"]) == 8 + 2 and all(w > 0 for w in seen["images"])  # a panel per image, scatter, curves
    rows = report["model"]["images"]
    psnr = {r["name"]: r["psnr"] for r in rows}
    assert seen["rows"] == len(rows) == 8
    assert seen["initial"] == sorted(psnr, key=psnr.get)  # worst first
    assert seen["psnrClicked"] == sorted(psnr, key=psnr.get, reverse=True)  # the sorted column flips: best first
    assert seen["nameClicked"] == sorted(psnr, key=_natural)  # natural order: 2_0 before 10_0
    assert seen["nameClickedTwice"] == seen["nameClicked"][::-1]
    assert len(set(seen["initial"])) == 8 and seen["nameClicked"] != seen["initial"]


def test_the_harness_sees_a_broken_page(small_report, tmp_path):
    """The same harness on a copy with a corrupt picture, a failing script and a console error, and no sort script."""
    _, page_path, _ = small_report
    page = page_path.read_text()
    page = re.sub(r"base64,[^\"]{40}", "base64,AAAA", page, count=1)  # the first picture's data cut short
    page = re.sub(r"<script>.*?</script>", "<script>console.error('boom'); no_such_function();</script>", page, flags=re.S)
    seen = open_in_chromium(page, tmp_path)
    assert seen["images"][0] == 0 and all(w > 0 for w in seen["images"][1:])
    assert len(seen["errors"]) == 3 and "error: boom" in seen["errors"]
    assert any("no_such_function" in e for e in seen["errors"]) and any("could not load" in e for e in seen["errors"])
    assert seen["psnrClicked"] == seen["initial"]  # nothing sorts without the script
