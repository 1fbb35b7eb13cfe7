"""The README's main job on the embedded default: everything offline, a few minutes on 2 cores.

1. synthetic (RGB, RAW) pairs from scikit-image's sample photos (Brooks et al. unprocessing);
2. train `training/configs/demo.yaml` (dual U-Nets at small width, the paper's losses);
3. evaluate it against the UPI and mosaic baselines on the held-out scenes, with the HTML report;
4. export it to TFLite and check it with LiteRT;
5. reconstruct one RAW as DNG plus a visualised PNG.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

from revisp_tf.train.config import load_config

# training/configs/demo.yaml, installed as package data of revisp_tf.configs (setup.py).
DEMO_CONFIG = Path(str(importlib.resources.files("revisp_tf.configs") / "demo.yaml"))


def run_demo(out_dir, overrides=(), overwrite: bool = False):
    """Runs the whole job into `out_dir`; yields progress and summary lines."""
    from revisp_tf.export.convert import export_tflite
    from revisp_tf.io.dng import write_dng
    from revisp_tf.io.images import read_rgb, write_rgb
    from revisp_tf.isp.process import visualize_raw_uint8
    from revisp_tf.isp.sensor import get_sensor
    from revisp_tf.models import predict_bayer
    from revisp_tf.report import evaluate_with_report
    from revisp_tf.scoring import scorer
    from revisp_tf.train.train_lib import train

    out = Path(out_dir)
    cfg = load_config(DEMO_CONFIG, overrides)
    sensor = get_sensor(cfg.data.sensor)
    yield f"[1-2/5] synthetic pairs and training ({cfg.model.variant}, width {cfg.model.base_filters}, {cfg.total_epochs} epochs) -> {out / 'run'}"
    run_dir = out / "run"
    if (run_dir / "DONE").exists() and not overwrite:
        yield f"      {run_dir} holds a finished demo run: reusing it (--overwrite trains again)"
        history = json.loads((run_dir / "history.json").read_text())
    else:
        history = train(cfg, run_dir, overwrite=overwrite).history
    model_path = run_dir / "model.keras"
    curve = " ".join(f"{h['psnr']:.2f}" for h in history)
    yield f"      validation PSNR by epoch (dB): {curve}"

    import keras

    model = keras.models.load_model(model_path)
    from revisp_tf.train.train_lib import load_examples

    _, val_examples, _ = load_examples(cfg, run_dir)
    yield f"[3/5] evaluating on {len(val_examples)} held-out images (scenes never seen in training)"
    about = {"data": f"{len(val_examples)} held-out pairs (scenes never seen in training)", "model": str(model_path)}
    report, page = evaluate_with_report(val_examples, sensor, out / "report", lambda rgb: predict_bayer(model, rgb),
                                        progress=False, about=about)
    scorer.write_report(report, out / "report.json", out / "report.csv")

    yield "[4/5] exporting to TFLite and checking it with LiteRT"
    checks = [read_rgb(ex.rgb) for ex in val_examples[:4]]
    tfl = export_tflite(model, out / "model.tflite", size=checks[0].shape[:2], check_data=checks)

    yield "[5/5] reconstructing a RAW: DNG + visualised PNG"
    rgb = read_rgb(val_examples[0].rgb)
    bayer = predict_bayer(model, rgb)
    stem = Path(val_examples[0].rgb).stem
    dng = write_dng(out / f"{stem}.dng", bayer, sensor, rgb=rgb)  # colour tags fitted to the input
    png = write_rgb(out / f"{stem}_raw_visualised.png", visualize_raw_uint8(bayer))  # as infer --format png draws it

    yield ""
    yield scorer.format_table(report)
    yield ""
    yield f"model       {model_path}"
    yield f"tflite      {tfl.path} ({tfl.size_bytes / 1e6:.2f} MB, max |LiteRT - Keras| {tfl.max_abs_error:.1e})"
    yield f"report      {out / 'report.json'}, {out / 'report.csv'}"
    yield f"raw         {dng}, {png}"
    yield f"tensorboard tensorboard --logdir {run_dir / 'tb'}"
    yield f"html report {page}"
