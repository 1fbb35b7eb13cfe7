"""Copies a finished generic-recipe run's model into saved_models/ as the shipped default, with its MANIFEST entry.

  python scripts/ship_model.py RUN_DIR [--loco runs/benchmark_fidelity/generic/loco.json]

RUN_DIR is a run of scripts/train_generic.py (its recipe.json lists the training data with
licences). The entry records the recipe, that data list, the resolved config, the validation
curve, the leave-one-camera-out figures of benchmark_generic.py (means over each held-out
camera's frames, per ISP) and the file's sha256. Entries of models no longer in saved_models/
are dropped.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import click
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from revisp_tf.weights import MANIFEST, MODELS_DIR, SHIPPED_MODEL, read_manifest, record  # noqa: E402


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--loco", type=click.Path(exists=True, dir_okay=False), help="benchmark_generic.py's report (loco.json).")
def main(run_dir, loco):
    run = Path(run_dir)
    if not (run / "DONE").exists() or not (run / "recipe.json").exists():
        raise click.ClickException(f"{run}: not a finished run of scripts/train_generic.py (no DONE or recipe.json)")
    recipe = json.loads((run / "recipe.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    history = json.loads((run / "history.json").read_text())
    target = MODELS_DIR / SHIPPED_MODEL
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(run / "model.keras", tmp)
    tmp.replace(target)
    figures = {}
    if loco:
        import benchmark_generic

        report = json.loads(Path(loco).read_text())
        figures = {"protocol": "scripts/benchmark_generic.py: leave one camera out, PSNR (dB) mean over the held-out camera's "
                               "frames, trained methods mean over seeds " + str(report.get("settings", {}).get("seeds")),
                   "psnr": benchmark_generic.camera_means(report)}
    stale = [n for n in read_manifest() if n.endswith(".keras") and not (MODELS_DIR / n).exists()]
    record(
        target,
        recipe=f"python scripts/train_generic.py --run-dir RUN --seed {recipe['seed']}; python scripts/ship_model.py RUN",
        config=config,
        data=recipe["data"],
        validation_curve=[{k: h[k] for k in ("epoch", "psnr", "ssim", "psnr_oe", "psnr_noe")} for h in history],
        leave_one_camera_out=figures,
        licence="MIT (this project); trained on real RAW files whose licences allow it (listed in data) and on "
                "synthetic pairs from scikit-image's sample photos",
    )
    if stale:
        entries = {k: v for k, v in read_manifest().items() if k not in stale}
        MANIFEST.write_text(json.dumps(entries, indent=2) + "\n")
    click.echo(f"shipped {target}" + (f" (dropped the MANIFEST entries of {', '.join(stale)})" if stale else ""))


if __name__ == "__main__":
    main()
