"""The `revisp-tf` command line: parse, call the library, report. No logic lives here."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import click  # noqa: E402

from revisp_tf import __version__  # noqa: E402
from revisp_tf.choices import (  # noqa: E402
    CONVERT_FORMATS,
    CONVERT_METADATA,
    EVAL_METADATA,
    FLOAT_PARTS,
    LAYOUTS,
    OUTPUT_FORMATS,
    QUANTIZE_MODES,
    RGB_FORMATS,
    VARIANTS,
)
from revisp_tf.convert import MAX_EXIT_STATUS  # noqa: E402
from revisp_tf.data.isps import ISPS  # noqa: E402
from revisp_tf.infer.tiling import DEFAULT_OVERLAP, DEFAULT_TILE  # noqa: E402


class _Command(click.Command):
    """Starts TensorFlow (quietly, unless --verbose) and applies the group's options once its own are parsed.

    After parsing, so that `COMMAND --help` answers at once.
    """

    def invoke(self, ctx):
        options = ctx.find_root().params
        _start_tensorflow(options["verbose"])
        from revisp_tf.io.images import set_max_pixels

        set_max_pixels(round(options["max_megapixels"] * 1e6))
        return super().invoke(ctx)


class _Group(click.Group):
    """Prints a library ValueError / OSError as one line and exits non-zero, instead of a traceback."""

    command_class = _Command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, OSError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


def _start_tensorflow(verbose: bool) -> None:
    """Imports TensorFlow; without `verbose`, its C++ start-up log is silenced, so a failing command prints one line.

    TF_CPP_MIN_LOG_LEVEL 3 hides the C++ log once absl is set up (e.g. "failed call to cuInit" on
    machines without a GPU); what TensorFlow prints before that (oneDNN, CUDA stub notices) ignores
    it, so file descriptor 2 points at /dev/null while TensorFlow and Keras are imported.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _load_model(model_path):
    """The inference form of the model at `model_path` (sub-pixel up convs, BatchNorm folded), or of the shipped one."""
    from revisp_tf.models.inference_form import load_inference_model
    from revisp_tf.weights import default_model_path

    return load_inference_model(model_path or default_model_path())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="revisp-tf")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up log (hidden by default).")
@click.option("--max-megapixels", default=64.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Refuse input images larger than this (width x height, read from the header).")
def main(verbose, max_megapixels):
    """Reverse ISP: camera RGB -> camera RAW bayer (Overexposure Mask Fusion, AIM 2022)."""


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo_out", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a value of training/configs/demo.yaml.")
@click.option("--overwrite", is_flag=True, help="Train again even if OUT holds a finished demo run.")
def demo(out_dir, overrides, overwrite):
    """The whole job offline: synthetic pairs, training, evaluation, TFLite export, DNG output."""
    from revisp_tf.demo import run_demo

    for line in run_demo(out_dir, overrides, overwrite):
        click.echo(line)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Experiment YAML.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. optim.phases.0.epochs=3.")
@click.option("--run-dir", required=True, type=click.Path(file_okay=False), help="Checkpoints, TensorBoard logs and the final model go here.")
@click.option("--overwrite", is_flag=True, help="Start over in a run directory that holds a finished or different run.")
def train(config_path, overrides, run_dir, overwrite):
    """Train a reverse ISP; rerun the same command to resume after a crash."""
    from revisp_tf.io.atomic import check_writable_dir
    from revisp_tf.train.config import load_config
    from revisp_tf.train.train_lib import train as run_training

    cfg = load_config(config_path, overrides)
    check_writable_dir(run_dir)
    result = run_training(cfg, run_dir, overwrite=overwrite)
    click.echo(f"model: {result.model_path}")


@main.command("make-pairs")
@click.argument("raw_files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--synthetic", is_flag=True, help="Make pairs from scikit-image's sample photos instead of RAW files.")
@click.option("--count", default=96, show_default=True, help="--synthetic: number of pairs.")
@click.option("--seed", default=0, show_default=True, help="--synthetic: random camera and crops.")
@click.option("--patch", default=None, type=int, help="Patch side in RGB pixels [default: 504 real, 128 synthetic].")
@click.option("--stride", default=None, type=int, help="Grid step in pixels (default: the patch size).")
@click.option("--isp", default=None, type=click.Choice(ISPS), help="Which real ISP renders the RGB [default: libraw].")
@click.option("--profile", default=None, metavar="NAME_OR_FILE", help="--isp rawtherapee: a bundled profile name or a .pp3 file [default: Pop 2 Lab]; "
              "--isp infinite-isp: the sensor's config .yml (required; its checkout: REVISP_INFINITE_ISP).")
@click.option("--shape", nargs=2, type=int, default=None, metavar="H W", help="Headerless RAW: rows and columns.")
@click.option("--dtype", default=None, help="Headerless RAW: sample type, e.g. uint16.")
@click.option("--cfa", default=None, help="CFA pattern when the file does not say (RGGB, GRBG, GBRG, BGGR).")
@click.option("--black", default=None, type=float, help="Black level (overrides the file's).")
@click.option("--white", default=None, type=float, help="White level (overrides the file's).")
@click.option("--rgb-format", default="jpg", show_default=True, type=click.Choice(RGB_FORMATS))
@click.option("--skip-bad", is_flag=True, help="Report and skip unreadable files (and pairs that cannot be aligned) instead of stopping.")
@click.option("--rgb", "rgb", multiple=True, metavar="RGB", help="Instead of an ISP: the camera's own JPEG/PNG of each RAW file, in order (repeat), or 'embedded' (each RAW's preview).")
@click.option("--rgb-dir", default=None, type=click.Path(file_okay=False), help="Instead of --rgb: a folder of the camera's JPEGs, matched by file stem (IMG_1.dng <-> IMG_1.jpg).")
def make_pairs(raw_files, out_dir, synthetic, count, seed, patch, stride, isp, profile, shape, dtype, cfa, black, white, rgb_format, skip_bad, rgb, rgb_dir):
    """(RGB, RAW) training pairs in the AIM 2022 layout: from RAW files through a real ISP, or synthetic."""
    from revisp_tf.io.atomic import check_writable_dir

    if synthetic:
        from revisp_tf.data.synthetic import make_synthetic_pairs

        if raw_files:
            raise click.UsageError("--synthetic takes no RAW files")
        check_writable_dir(out_dir)
        meta = make_synthetic_pairs(out_dir, count=count, seed=seed, patch=128 if patch is None else patch, rgb_format=rgb_format)
        share = meta["overexposed"]
        click.echo(f"{count} synthetic pairs in {out_dir}; overexposed share mean {share['mean']:.2%}, max {share['max']:.2%}")
        return
    if not raw_files:
        raise click.UsageError("give RAW files, or --synthetic")
    from revisp_tf.data.pairs import make_pairs_from_raw

    check_writable_dir(out_dir)
    summary = make_pairs_from_raw(
        list(raw_files), out_dir, patch=504 if patch is None else patch, stride=stride, rgb_format=rgb_format, skip_bad=skip_bad, isp=isp,
        profile=profile, progress=True, shape=shape or None, dtype=dtype, cfa=cfa, black=black, white=white,
        rgb=list(rgb) or None, rgb_dir=rgb_dir,
    )
    for scene in summary["scenes"]:
        if scene.get("skipped"):
            click.echo(f"skipped {scene['source']}: {scene['skipped']}", err=True)
        else:
            click.echo(f"{scene['source']}: {scene['patches']} patches as scene {scene['scene']}, overexposed {scene['overexposed']:.2%}"
                       + (f"; {scene['aligned']}" if scene.get("aligned") else ""))
    for failed in summary["failed"]:
        click.echo(f"skipped {failed['source']}: {failed['error']}", err=True)
    if not summary["patches"]:
        raise ValueError(f"no pairs written to {out_dir}: every file was skipped (a smaller --patch fits small frames)")
    click.echo(f"{summary['patches']} pairs in {out_dir}")


@main.command("prepare-gt")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--sensor", default="s7", show_default=True, help="How the stored RAW maps to model units.")
@click.option("--layout", default="aim22", show_default=True, type=click.Choice(LAYOUTS))
@click.option("--skip-bad", is_flag=True, help="Report and skip bad files instead of stopping.")
@click.option("--overwrite", is_flag=True, help="Recompute files that already have their ground truth.")
def prepare_gt_cmd(data_dir, sensor, layout, skip_bad, overwrite):
    """Write the demosaiced-RAW ground truth (pretrained Demosaic Net) beside each RAW file."""
    from revisp_tf.data.prepare_gt import prepare_gt
    from revisp_tf.io.atomic import check_writable_dir
    from revisp_tf.isp.sensor import get_sensor

    check_writable_dir(data_dir)
    report = prepare_gt(data_dir, get_sensor(sensor), layout=layout, skip_bad=skip_bad, overwrite=overwrite)
    for bad in report.skipped:
        click.echo(f"skipped {bad.path}: {bad.reason}", err=True)
    click.echo(f"{report.written} written, {report.already_done} already done, {len(report.skipped)} skipped")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="A .keras model [default: the shipped model].")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="npy", show_default=True, type=click.Choice(OUTPUT_FORMATS),
              help="npy: challenge submission (uint16 packed RGGB); dng: a CFA DNG for RAW editors, its "
                   "AsShotNeutral (the camera RGB of white: the editor's 'as shot' white balance) and "
                   "ColorMatrix1 (XYZ -> camera, D65) fitted per image so that LibRaw, darktable and "
                   "RawTherapee open it at their defaults with the input's colours; png: the RAW visualised.")
@click.option("--sensor", default="s7", show_default=True, help="Levels and normaliser of the output RAW.")
@click.option("--tile", default=DEFAULT_TILE, show_default=True, help="Tile side in px (full frames run tile by tile).")
@click.option("--overlap", default=DEFAULT_OVERLAP, show_default=True, help="Overlap of neighbouring tiles in px.")
@click.option("--batch-size", default=1, show_default=True, help="Tiles per model call.")
@click.option("--stitch", is_flag=True, help="Rebuild AIM 2022 6x8 patch grids ({scene}_{k}) into full frames first.")
@click.option("--jit", is_flag=True, help="Compile the tile computation with XLA.")
@click.option("--metadata", "metadata", default="none", show_default=True, metavar="exif|FILE.json|none",
              help="Each image's capture metadata (white balance, exposure): exif reads a camera JPEG's maker notes "
                   "(exiftool, Debian libimage-exiftool-perl); FILE.json holds one capture object, or one per image stem.")
@click.option("--wb", default=None, metavar="R,B", help="White balance of every input: red and blue multipliers over green's.")
@click.option("--exposure-gain", default=None, type=float, metavar="G", help="Exposure gain of every input (with --wb or --metadata).")
def infer(inputs, model_path, out_dir, fmt, sensor, tile, overlap, batch_size, stitch, jit, metadata, wb, exposure_gain):
    """Reconstruct RAW from RGB images (files or folders), any size, at full resolution."""
    from revisp_tf.infer.files import expand_inputs, reconstruct_files
    from revisp_tf.io.atomic import check_writable_dir
    from revisp_tf.io.images import check_rgb_files
    from revisp_tf.io.metadata import capture_metadata_for, parse_wb
    from revisp_tf.isp.sensor import get_sensor

    paths = expand_inputs(inputs)
    check_rgb_files(paths)  # every input, before any output is written
    captures = capture_metadata_for(paths, metadata, None if wb is None else parse_wb(wb), exposure_gain)
    missing = [str(p) for p, c in captures.items() if c is None]
    if metadata != "none" and missing:
        click.echo(f"no capture metadata (white balance) in {len(missing)} file(s): {', '.join(missing)}; "
                   "the model's frame-gain prior estimates their gains", err=True)
    check_writable_dir(out_dir)
    if model_path is None:
        click.echo("no --model: using the shipped generic model, a first guess for any camera; "
                   "a model trained on your camera's pairs (training/configs/camera.yaml) is better", err=True)
    written = reconstruct_files(inputs, _load_model(model_path), out_dir, fmt, get_sensor(sensor), tile=tile,
                                overlap=overlap, batch_size=batch_size, stitch=stitch, jit_compile=jit, metadata=captures)
    click.echo(f"{len(written)} file(s) written to {out_dir}")


class _BeamCommand(_Command):
    """A command whose arguments after `--` are Apache Beam's pipeline options (in ctx.meta["beam_args"])."""

    def parse_args(self, ctx, args):
        if "--" in args:
            cut = args.index("--")
            args, ctx.meta["beam_args"] = args[:cut], args[cut + 1 :]
        return super().parse_args(ctx, args)


@main.command(cls=_BeamCommand)
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, help="Output folder: local, or gs:// / s3:// with Beam's extras for them.")
@click.option("--model", "model_path", help="A .keras model, local or gs:// / s3:// [default: the shipped model].")
@click.option("--format", "fmt", default="npy", show_default=True, type=click.Choice(CONVERT_FORMATS),
              help="npy and dng: one file per input, as `infer` writes them; tfrecord: shards of tf.train.Example "
                   "records (the packed bayer as uint16, its shape, CFA, levels, the RGB path).")
@click.option("--sensor", default="s7", show_default=True, help="Levels and normaliser of the output RAW.")
@click.option("--tile", default=512, show_default=True, help="Tile side in px.")
@click.option("--overlap", default=64, show_default=True, help="Overlap of neighbouring tiles in px.")
@click.option("--batch-size", default=1, show_default=True, help="Tiles per model call.")
@click.option("--metadata", default="none", show_default=True, type=click.Choice(CONVERT_METADATA),
              help="Capture metadata (white balance, exposure) given to the model: none for now.")
@click.pass_context
def convert(ctx, inputs, out_dir, model_path, fmt, sensor, tile, overlap, batch_size, metadata):
    """Convert whole datasets to RAW with an Apache Beam pipeline; rerun the same command to resume.

    INPUTS: image files, folders, globs ('data/**/*.jpg', quoted) or .txt files listing paths.
    Apache Beam's pipeline options go after `--`; by default the DirectRunner runs one worker
    per core (e.g. `-- --direct_num_workers 4`, or `-- --runner DataflowRunner --project ...`).
    Inputs that cannot be read go to OUT/dead_letter.txt and the rest carry on; the exit
    status is the number that failed (at most 100).
    """
    from revisp_tf.convert import require_beam

    require_beam()
    from revisp_tf.convert.pipeline import ConvertConfig, convert as run_conversion

    config = ConvertConfig(fmt, sensor, tile, overlap, batch_size, metadata)
    report = run_conversion(inputs, out_dir, model_path=model_path, config=config, beam_args=ctx.meta.get("beam_args", ()),
                            on_progress=lambda progress: click.echo(f"convert: {progress.line()}", err=True))
    for line in report.failures[:10]:
        click.echo(f"failed: {line}", err=True)
    click.echo(f"{report.progress.line()}\nmanifest: {report.manifest}\ndead letter: {report.dead_letter} "
               f"({len(report.failures)} line(s))\nBeam's log: {report.log}")
    if report.failures:
        sys.exit(min(len(report.failures), MAX_EXIT_STATUS))


@main.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="A .keras model [default: the shipped model].")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The .tflite file.")
@click.option("--variant", type=click.Choice(VARIANTS), help="Refuse a model of another variant.")
@click.option("--quantize", default="none", show_default=True, type=click.Choice(QUANTIZE_MODES))
@click.option("--size", nargs=2, type=int, default=(504, 504), show_default=True, metavar="H W", help="Static input size.")
@click.option("--dynamic", is_flag=True, help="Dynamic input height and width instead of --size.")
@click.option("--calibration", type=click.Path(exists=True, file_okay=False), help="int8: a folder of images of the target camera.")
@click.option("--float-parts", multiple=True, type=click.Choice(["none", *FLOAT_PARTS]),
              help="int8: a part kept in float32 besides the mask (repeat for more; none: quantize all but the mask) "
                   "[default: head, and global for a global-stage model].")
@click.option("--exposure-bracket/--no-exposure-bracket", default=None,
              help="int8: also calibrate on each image re-exposed by -2..+2 stops; --no-exposure-bracket when the "
                   "calibration images already span the camera's exposures [default: on for a plain dual net only].")
def export(model_path, out_path, variant, quantize, size, dynamic, calibration, float_parts, exposure_bracket):
    """Export the whole inference graph to one TFLite model (builtin ops only) and check it with LiteRT."""
    from revisp_tf.export.convert import export_model
    from revisp_tf.io.atomic import check_output_file

    check_output_file(out_path)
    report = export_model(lambda: _load_model(model_path), out_path, variant=variant, quantize=quantize,
                          size=None if dynamic else tuple(size), calibration_dir=calibration, float_parts=float_parts,
                          exposure_bracket=exposure_bracket, model_name=model_path or "the shipped model")
    for line in report.lines():
        click.echo(line)


@main.command("eval")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="A .keras model from `revisp-tf train` [default: the shipped model].")
@click.option("--no-model", is_flag=True, help="Evaluate the baselines only.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="(RGB, RAW) pairs.")
@click.option("--sensor", default="s7", show_default=True, help="How the stored RAW maps to model units.")
@click.option("--layout", default="aim22", show_default=True, type=click.Choice(LAYOUTS))
@click.option("--baselines", default="upi,mosaic", show_default=True,
              help="Comma-separated from upi, mosaic, fitted (the global inverse fitted on --fit-data); empty for none.")
@click.option("--fit-data", type=click.Path(file_okay=False), help="Pairs (same layout and sensor) the fitted baseline is fitted on.")
@click.option("--out", "out_json", default="report.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--skip-bad", is_flag=True, help="Leave out bad files (listed with reasons) instead of stopping.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Also write DIR/index.html: figures and pictures of where each method fails, one self-contained file.")
@click.option("--metadata", default="recorded", show_default=True, type=click.Choice(EVAL_METADATA),
              help="Give a global-stage model each frame's recorded white balance and exposure (make-pairs' meta.json), "
                   "or none: its frame-gain prior alone.")
def eval_cmd(model_path, no_model, data_dir, sensor, layout, baselines, fit_data, out_json, skip_bad, report_dir, metadata):
    """Challenge PSNR/SSIM of a model and of the UPI / mosaic baselines, per image and mean."""
    from pathlib import Path

    from revisp_tf.io.atomic import check_output_file, check_writable_dir
    from revisp_tf.isp.sensor import get_sensor
    from revisp_tf.report import REPORT_PAGE
    from revisp_tf.scoring.evaluate import run_eval
    from revisp_tf.scoring.scorer import format_table, write_report

    check_output_file(out_json)
    if report_dir:
        check_writable_dir(report_dir)
    model = None if no_model else _load_model(model_path)
    about = {"data": data_dir, "model": "none" if no_model else model_path or "the shipped model", "sensor": sensor}
    report, skipped = run_eval(model, data_dir, get_sensor(sensor), layout=layout, baselines=[b for b in baselines.split(",") if b],
                               fit_data=fit_data, skip_bad=skip_bad, report_dir=report_dir, about=about, metadata=metadata)
    for bad in skipped:
        click.echo(f"skipped {bad.path}: {bad.reason}", err=True)
    write_report(report, out_json, Path(out_json).with_suffix(".csv"))
    click.echo(format_table(report))
    click.echo(f"report: {out_json} (per image: {Path(out_json).with_suffix('.csv')})")
    if report_dir:
        click.echo(f"html report: {Path(report_dir) / REPORT_PAGE}")


if __name__ == "__main__":
    main()
