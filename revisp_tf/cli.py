"""The `revisp-tf` command line: parse, call the library, report. No logic lives here."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import click  # noqa: E402

from revisp_tf import __version__  # noqa: E402


class _Group(click.Group):
    """Prints a library ValueError / OSError as one line and exits non-zero, instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, OSError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="revisp-tf")
def main():
    """Reverse ISP: camera RGB -> camera RAW bayer (Overexposure Mask Fusion, AIM 2022)."""


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo_out", show_default=True)
def demo(out_dir):
    """Smoke run of the whole pipeline on a package-shipped image with a random-weight model."""
    from revisp_tf.demo import run_smoke

    for line in run_smoke(out_dir):
        click.echo(line)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Experiment YAML.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. optim.phases.0.epochs=3.")
@click.option("--run-dir", required=True, type=click.Path(file_okay=False), help="Checkpoints, TensorBoard logs and the final model go here.")
@click.option("--overwrite", is_flag=True, help="Start over in a run directory that holds a finished or different run.")
def train(config_path, overrides, run_dir, overwrite):
    """Train a reverse ISP; rerun the same command to resume after a crash."""
    from revisp_tf.train.config import load_config
    from revisp_tf.train.trainer import train as run_training

    cfg = load_config(config_path, overrides)
    result = run_training(cfg, run_dir, overwrite=overwrite)
    click.echo(f"model: {result.model_path}")


if __name__ == "__main__":
    main()
