"""The evaluation report: one self-contained HTML page of figures and pictures (`revisp-tf eval --report`).

`evaluation` runs the evaluation and writes the page; `panel` draws one image's panel (also
written to TensorBoard during training); `plots` the scatter and error curves; `stats` their
numbers in NumPy; `page` the HTML.
"""

from revisp_tf.report.evaluation import REPORT_PAGE, evaluate_with_report
from revisp_tf.report.panel import render_panel

__all__ = ["REPORT_PAGE", "evaluate_with_report", "render_panel"]
