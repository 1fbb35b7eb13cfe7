"""The report's one HTML file: every picture inline (base64), no network fetch, a few lines of script to sort."""

from __future__ import annotations

import base64
import dataclasses
import html
import math

from revisp_tf.scoring.scorer import FIELDS

_HEADINGS = {"psnr": "PSNR", "ssim": "SSIM", "psnr_oe": "PSNR OE", "psnr_noe": "PSNR other", "ssim_skimage": "SSIM (skimage)"}
_DETAIL = ("psnr", "ssim", "psnr_oe", "psnr_noe")  # the images table's columns for the sorting method

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}#images th{cursor:pointer;user-select:none;background:#f4f4f4;position:sticky;top:0}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
#about td{text-align:left}figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{font-weight:600}.note{color:#666}
"""

# Sorts the images table by the clicked header: numbers (data-num) by their data-v, names in natural order (2_1 before 10_1);
# an empty value (a PSNR over no pixel) stays last either way. First click ascending, then flips.
_SORT_SCRIPT = """
for (const th of document.querySelectorAll("#images th")) th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], col = th.cellIndex, up = th.dataset.dir !== "asc";
  for (const other of th.parentNode.cells) delete other.dataset.dir;
  th.dataset.dir = up ? "asc" : "desc";
  const key = row => row.cells[col].dataset.v ?? row.cells[col].textContent;
  body.append(...[...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    const d = th.dataset.num ? x - y : x.localeCompare(y, "en", {numeric: true});
    return up ? d : -d;
  }));
});
"""


@dataclasses.dataclass(frozen=True)
class Panel:
    """One image's panel: its index in the report, why it is shown ("" when every image is), the JPEG."""

    index: int
    why: str
    jpeg: bytes
    size: tuple[int, int]  # (height, width) px


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(data: bytes, mime: str, alt: str, size: tuple[int, int] | None = None) -> str:
    dims = f' width="{size[1]}" height="{size[0]}"' if size else ""
    return f'<img src="{data_uri(data, mime)}" alt="{html.escape(alt)}"{dims}>'


def _num(v, fmt: str) -> str:
    """A numeric cell: the value for sorting in data-v (empty for NaN), shown rounded."""
    if v is None or math.isnan(v):
        return '<td data-v="">&ndash;</td>'
    return f'<td data-v="{v!r}">{format(v, fmt)}</td>'


def _fmt(field: str) -> str:
    return ".4f" if field.startswith("ssim") else ".2f"


def summary_table(report: dict) -> str:
    head = "".join(f"<th>{_HEADINGS[f]}</th>" for f in FIELDS)
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(_num(r[f], _fmt(f)) for f in FIELDS) + "</tr>" for m, r in report.items()
    )
    return f'<table id="summary"><thead><tr><th>method</th>{head}</tr></thead><tbody>{rows}</tbody></table>'


def images_table(report: dict, key: str, order, shown: dict[int, str]) -> str:
    """Every image, one row each in `order` (worst first), sortable by any header; shown images link to their panel."""
    others = [m for m in report if m != key]
    head = ["<th>image</th>"] + [
        f'<th data-num="1"{" data-dir=asc" if f == "psnr" else ""}>{key} {_HEADINGS[f]}</th>' for f in _DETAIL
    ] + [f'<th data-num="1">{m} PSNR</th>' for m in others]
    body = []
    for i in order:
        name = html.escape(report[key]["images"][i]["name"])
        cell = f'<a href="#img-{i}">{name}</a>' if i in shown else name
        row = report[key]["images"][i]
        cells = [_num(row[f], _fmt(f)) for f in _DETAIL] + [_num(report[m]["images"][i]["psnr"], ".2f") for m in others]
        body.append(f"<tr><td>{cell}</td>{''.join(cells)}</tr>")
    return f'<table id="images"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def build_page(report: dict, key: str, order, panels: list[Panel], scatter, profiles_png: bytes, about: dict) -> str:
    """The whole page. `order`: image indices worst first; `scatter`: (PNG, {baseline: wins}) or None."""
    n = len(report[key]["images"])
    facts = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in about.items())
    if scatter is None:
        scatter_html = '<p class="note">No scatter: it needs the model and the upi or fitted baseline.</p>'
    else:
        scatter_html = _img(scatter[0], "image/png", "per-image PSNR: model against baselines")
    every_image = all(not p.why for p in panels)
    panel_note = (
        f"All {n} images, worst first (by {key} PSNR)." if every_image else
        f"The {sum(p.why == 'worst' for p in panels)} worst, {sum(p.why == 'best' for p in panels)} best and "
        f"{sum(p.why == 'random' for p in panels)} random images of {n} (by {key} PSNR); the table lists all."
    )
    figures = []
    for p in panels:
        name = report[key]["images"][p.index]["name"]
        why = f" ({p.why})" if p.why else ""
        caption = f"{html.escape(name)}{why}: {key} {report[key]['images'][p.index]['psnr']:.2f} dB"
        figures.append(f'<figure id="img-{p.index}"><figcaption>{caption}</figcaption>{_img(p.jpeg, "image/jpeg", name, p.size)}</figure>')
    shown = {p.index: p.why for p in panels}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>revisp-tf evaluation report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>revisp-tf evaluation report</h1>
<table id="about">{facts}</table>
<h2>Summary</h2>
<p class="note">Means over the images; OE: on the overexposed samples (mask of the input RGB), other: on the rest. The OE mean is over the images that have overexposed pixels.</p>
{summary_table(report)}
<h2>Per image, against the baselines</h2>
{scatter_html}
<h2>Where the error lives</h2>
<p class="note">Mean absolute error of each RAW sample, by its ground-truth value and by its distance from the centre of its frame, over all images.</p>
{_img(profiles_png, "image/png", "mean error by RAW intensity and by distance from the frame centre")}
<h2>Images</h2>
<p class="note">{panel_note} Input RGB with its overexposed pixels outlined; RAW pictures drawn as <code>revisp-tf infer --format png</code> draws them, all with the ground truth's white balance; signed error (prediction &minus; ground truth).</p>
{"".join(figures)}
<h2>All images</h2>
<p class="note">Click a header to sort; worst first.</p>
{images_table(report, key, order, shown)}
<script>{_SORT_SCRIPT}</script>
</body></html>
"""
