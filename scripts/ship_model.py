"""Copies a finished training run's model into saved_models/ as the shipped default, with its MANIFEST entry.

  python scripts/ship_model.py RUN_DIR [--eval NAME=REPORT.json ...]

The entry records the recipe (the run's resolved config), how to regenerate its data, the
validation curve, any `revisp-tf eval` reports given, and the file's sha256.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import yaml

from revisp_tf.weights import MODELS_DIR, SHIPPED_MODEL, record


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--eval", "evals", multiple=True, metavar="NAME=REPORT.json", help="Eval reports to record (means only).")
def main(run_dir, evals):
    run = Path(run_dir)
    if not (run / "DONE").exists():
        raise click.ClickException(f"{run}: not a finished run (no DONE)")
    config = yaml.safe_load((run / "config.yaml").read_text())
    history = json.loads((run / "history.json").read_text())
    target = MODELS_DIR / SHIPPED_MODEL
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(run / "model.keras", tmp)
    tmp.replace(target)
    reports = {}
    for item in evals:
        name, path = item.split("=", 1)
        report = json.loads(Path(path).read_text())
        reports[name] = {m: {k: v for k, v in r.items() if k != "images"} | {"images": len(r["images"])} for m, r in report.items()}
    data = config["data"]
    record(
        target,
        recipe="revisp-tf train --config training/configs/shipped_synthetic.yaml",
        config=config,
        data=(f"synthetic pairs made by the trainer: revisp-tf make-pairs --synthetic --count {data['synthetic_count']} "
              f"--patch {data['synthetic_patch']} --seed {config['runtime']['seed']}; validation = held-out scenes "
              f"(val_fraction {data['val_fraction']})"),
        validation_curve=[{k: h[k] for k in ("epoch", "psnr", "ssim", "psnr_oe", "psnr_noe")} for h in history],
        evaluations=reports,
        licence="MIT (this project); trained only on images shipped by scikit-image (BSD) and generated data",
    )
    click.echo(f"shipped {target}")


if __name__ == "__main__":
    main()
