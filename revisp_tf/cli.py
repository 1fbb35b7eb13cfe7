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


if __name__ == "__main__":
    main()
