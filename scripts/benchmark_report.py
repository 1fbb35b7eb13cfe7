"""What `eval --report` costs on a 500-image eval set: the page's size and the time it adds to `eval`.

    python scripts/benchmark_report.py                         # 500 synthetic 128 px pairs, 5 runs
    python scripts/benchmark_report.py --data DIR --sensor s7  # your own pairs

Makes `--count` synthetic pairs (`make-pairs --synthetic --patch 128`) in a temporary folder
unless --data is given, loads the shipped model once (and warms it up), then times `--runs`
rounds of `evaluate_pairs` (what `eval` runs) and `evaluate_with_report` (what `eval
--report` runs: the same evaluation, the error curves, a second pass over the 24 images that
get a panel, the page), alternated in one process so that both see the same machine load.
Prints each run's wall and CPU seconds (this process's, steadier than wall time on a shared
machine), their medians, the added share (median with / median without - 1, and the median of
each run's own ratio) and the page's size in MB (10^6 bytes). The issue's bounds: the page < 15 MB, the added time <= 20 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.data.synthetic import make_synthetic_pairs  # noqa: E402
from revisp_tf.io.images import read_rgb  # noqa: E402
from revisp_tf.isp.sensor import get_sensor  # noqa: E402
from revisp_tf.models import predict_bayer  # noqa: E402
from revisp_tf.models.inference_form import load_inference_model  # noqa: E402
from revisp_tf.report import evaluate_with_report  # noqa: E402
from revisp_tf.scoring.evaluate import evaluate_pairs  # noqa: E402
from revisp_tf.weights import default_model_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="(RGB, RAW) pairs [default: synthetic ones in a temporary folder]")
    ap.add_argument("--sensor", default="project", help="sensor of --data [default: project, the synthetic pairs']")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="benchmark_report_") as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "pairs"
            make_synthetic_pairs(data, count=args.count, seed=0, patch=args.patch)
        sensor = get_sensor(args.sensor)
        examples = scan_pairs(data, sensor=sensor)
        model = load_inference_model(default_model_path())
        predict = lambda rgb: predict_bayer(model, rgb)  # noqa: E731
        predict(read_rgb(examples[0].rgb))  # warm-up: the first call builds the graph
        wall = {"eval": [], "eval --report": []}
        cpu = {"eval": [], "eval --report": []}  # this process's CPU seconds: steadier than wall time on a shared machine
        size = 0
        for run in range(args.runs):
            for name in wall:
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "eval":
                    evaluate_pairs(examples, sensor, predict, progress=False)
                else:
                    size = evaluate_with_report(examples, sensor, Path(tmp) / "report", predict, progress=False)[1].stat().st_size
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
            print(f"run {run + 1}: " + ", ".join(f"{n} {wall[n][-1]:.1f} s wall / {cpu[n][-1]:.1f} s CPU" for n in wall), flush=True)
    h, w = examples[0].size
    print(f"{len(examples)} images of {w}x{h} px, {os.cpu_count()} CPU cores")
    for label, times in (("wall", wall), ("CPU", cpu)):
        a, b = statistics.median(times["eval"]), statistics.median(times["eval --report"])
        paired = statistics.median(r / p - 1 for p, r in zip(times["eval"], times["eval --report"]))
        print(f"{label:>4}: eval median {a:.1f} s, eval --report median {b:.1f} s: +{100 * (b / a - 1):.1f} % "
              f"(median of the runs' own ratios +{100 * paired:.1f} %; bound 20 %)")
    print(f"index.html: {size / 1e6:.2f} MB (bound 15 MB)")


if __name__ == "__main__":
    main()
