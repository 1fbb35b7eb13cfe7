"""`revisp-tf convert`: whole RGB datasets to RAW through an Apache Beam pipeline.

    todo.txt -> Reshuffle -> ReadFrame -> RunInference(TiledModelHandler) -> WriteRaw (npy, dng)
                               |                                         -> WriteShards (tfrecord)
                               `-> failures -> dead_letter.txt
    once every output is written: the committed manifest fragments -> manifest.jsonl

- Reading and checking each image is the library's (`read_file_bytes`, `decode_rgb_samples`,
  `check_even`): a bad input gets the message `infer` prints for it, in the dead-letter file,
  and the rest carry on. The inference and the writers are `infer`'s too (`TiledInference`
  with the frame context; `write_frame`), so npy and DNG outputs are byte-equal to `infer`'s.
- Resuming: the launcher skips the inputs whose output is committed (`Store`: its manifest
  fragment, then the output itself, each atomic) and hands the rest to the pipeline; a worker
  checks again before reading, in case a runner re-runs a bundle that committed some outputs.
  TFRecord shards are named by the hash of the inputs they hold, so a re-run bundle rewrites
  the same shards instead of adding copies.
- Workers: DirectRunner in multi-processing mode, one worker per core, unless Beam options say
  otherwise (`--runner DataflowRunner`, `--direct_num_workers 4`, ...). Each loads the model
  once. Beam's and the workers' own log goes to `.convert/beam.log`, not the terminal.
- Progress: every few seconds, images converted (committed fragments newer than the run's
  start), failed and skipped, and images per second since the start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from revisp_tf.checks import check_choice
from revisp_tf.choices import CONVERT_FORMATS, CONVERT_METADATA
from revisp_tf.convert import handler as handlers
from revisp_tf.convert.inputs import expand, output_names
from revisp_tf.convert.store import DEAD_LETTER, MANIFEST, Store
from revisp_tf.convert.tfrecord import SUFFIX as TFRECORD_SUFFIX
from revisp_tf.convert.tfrecord import raw_example
from revisp_tf.io.atomic import check_writable_dir, remove_stale_temporaries
from revisp_tf.io.images import (
    RGB_EXPECTED,
    ImageReadError,
    decode_rgb_samples,
    max_pixels,
    read_file_bytes,
    set_max_pixels,
)
from revisp_tf.isp.sensor import SensorSpec, get_sensor
from revisp_tf.infer.files import check_even, write_frame
from revisp_tf.weights import sha256

SHARD_BYTES = 256 << 20  # a TFRecord shard is closed once it holds this much
PROGRESS_SECONDS = 10.0
_NAMESPACE = "revisp_tf"
_FAILED = "failed"


class ConversionFailed(ValueError):
    """The pipeline failed (a worker's error, an output that could not be written): one line naming Beam's log."""


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """What each input goes through: output format, sensor, tiling (as `infer`), capture metadata."""

    fmt: str = "npy"
    sensor: str = "s7"
    tile: int = 512
    overlap: int = 64
    batch_size: int = 1
    metadata: str = "none"

    def __post_init__(self):
        check_choice("output format", self.fmt, CONVERT_FORMATS)
        check_choice("capture metadata", self.metadata, CONVERT_METADATA)
        get_sensor(self.sensor)

    def settings(self, model_sha256: str) -> dict:
        """What the outputs depend on: a folder holds the outputs of one set only."""
        return {"format": self.fmt, "model_sha256": model_sha256, "sensor": self.sensor, "tile": self.tile,
                "overlap": self.overlap, "metadata": self.metadata}


@dataclasses.dataclass(frozen=True)
class Progress:
    """Counts of a run: inputs given, converted in this run, failed, skipped (converted before); seconds since its start."""

    total: int
    converted: int
    failed: int
    skipped: int
    seconds: float

    def line(self) -> str:
        rate = self.converted / self.seconds if self.seconds > 0 else 0.0
        finished = self.converted + self.failed + self.skipped
        return (f"{finished}/{self.total}: {self.converted} converted, {self.failed} failed, {self.skipped} skipped; "
                f"{rate:.2f} images/s over {self.seconds:.0f} s")


@dataclasses.dataclass(frozen=True)
class ConvertReport:
    """The end of a run: its counts, where the manifest, dead-letter file and Beam's log are, and the failures."""

    progress: Progress
    manifest: str
    dead_letter: str
    log: str
    failures: list[str]


def _entry(frame: handlers.Frame, output: str, identity: dict) -> dict:
    """An input's manifest entry (`identity`: the model's sha256 and the metadata used)."""
    return {"input": frame.path, "sha256": frame.sha256, "output": output, **identity,
            "seconds": round(time.time() - frame.started, 3)}


class ReadFrame(beam.DoFn):
    """Input path -> Frame (bytes hashed, decoded and checked as `infer` does); tagged `failed`: (path, message)."""

    def __init__(self, store: Store, fmt: str, pixel_limit: int):
        self.store, self.fmt, self.pixel_limit = store, fmt, pixel_limit

    def setup(self):
        set_max_pixels(self.pixel_limit)  # the launcher's --max-megapixels, in this worker process

    def process(self, path: str):
        output = None if self.fmt == "tfrecord" else output_names([path], self.fmt)[path]
        if output and self.store.exists(self.store.path(output)) and self.store.exists(self.store.fragment(output)):
            beam.metrics.Metrics.counter(_NAMESPACE, "skipped").inc()  # committed by an earlier run of this bundle
        else:
            yield self._read(path, output)

    def _read(self, path: str, output: str | None):
        started = time.time()
        try:
            if FileSystems.get_scheme(path) is None:
                name = Path(path)  # named exactly as `infer` names it
                data = read_file_bytes(name, RGB_EXPECTED)
            else:
                name = path
                data = read_file_bytes(path, RGB_EXPECTED, lambda p: FileSystems.open(p, compression_type=CompressionTypes.UNCOMPRESSED))
            rgb = decode_rgb_samples(data, name)
            check_even(rgb, name)
        except ImageReadError as e:
            beam.metrics.Metrics.counter(_NAMESPACE, "failed").inc()
            return beam.pvalue.TaggedOutput(_FAILED, (path, str(e)))
        return handlers.Frame(path, output, hashlib.sha256(data).hexdigest(), rgb, started)


class RecordFailure(beam.DoFn):
    """(path, message) -> the message, also left in the state folder for the progress counts."""

    def __init__(self, store: Store):
        self.store = store

    def process(self, failure):
        path, message = failure
        self.store.write_text(self.store.failure(path), message + "\n")
        yield message


class WriteRaw(beam.DoFn):
    """PredictionResult -> the input's npy or DNG file, committed (fragment, then file); yields 1."""

    def __init__(self, store: Store, fmt: str, sensor: SensorSpec, identity: dict):
        self.store, self.fmt, self.sensor, self.identity = store, fmt, sensor, identity

    def process(self, result):
        frame, raw = result.example, result.inference
        staged = self.store.staging(frame.output)
        write_frame(staged, self.fmt, frame.rgb, [(0, raw)], self.sensor)
        entry = _entry(frame, frame.output, self.identity)
        self.store.write_text(self.store.fragment(frame.output), json.dumps(entry) + "\n")
        self.store.publish(staged, frame.output)
        beam.metrics.Metrics.counter(_NAMESPACE, "converted").inc()
        yield 1

    def teardown(self):
        self.store.remove_scratch()


class WriteShards(beam.DoFn):
    """PredictionResults -> TFRecord shards of about SHARD_BYTES, each committed (fragment, then shard) as it fills."""

    def __init__(self, store: Store, sensor: SensorSpec, identity: dict):
        self.store, self.sensor, self.identity = store, sensor, identity

    def start_bundle(self):
        self._reset()

    def _reset(self):
        self._staged, self._writer, self._entries, self._bytes = None, None, [], 0

    def process(self, result):
        frame, raw = result.example, result.inference
        if self._writer is None:
            self._staged = self.store.staging(f"records-open-{uuid.uuid4().hex}{TFRECORD_SUFFIX}")
            self._writer = tf.io.TFRecordWriter(str(self._staged))
        record = raw_example(self.sensor.to_stored(raw), self.sensor, frame.path)
        self._writer.write(record)
        self._entries.append(_entry(frame, "", self.identity))
        self._bytes += len(record)
        if self._bytes >= SHARD_BYTES:
            yield self._commit()

    def finish_bundle(self):
        if self._writer is not None:
            yield WindowedValue(self._commit(), GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _commit(self) -> int:
        self._writer.close()
        inputs = "\n".join(e["input"] for e in self._entries)
        name = f"records-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}{TFRECORD_SUFFIX}"
        lines = "".join(json.dumps({**e, "output": name}) + "\n" for e in self._entries)
        self.store.write_text(self.store.fragment(name), lines)
        self.store.publish(self._staged, name)
        beam.metrics.Metrics.counter(_NAMESPACE, "converted").inc(len(self._entries))
        count = len(self._entries)
        self._reset()
        return count

    def teardown(self):
        self.store.remove_scratch()


def _fragment_lines(output: str, store: Store) -> list[str]:
    return [json.dumps(entry) for entry in store.manifest_lines(output)]


def build(p: beam.Pipeline, store: Store, config: ConvertConfig, model_path: str | None, identity: dict) -> None:
    """The conversion of the inputs in `store.todo`, and the manifest and dead-letter files after it."""
    sensor = get_sensor(config.sensor)
    model = handlers.TiledModelHandler(model_path, config.tile, config.overlap, config.batch_size)
    paths = p | "inputs" >> beam.io.ReadFromText(store.todo) | "spread" >> beam.Reshuffle()
    read = paths | "read" >> beam.ParDo(ReadFrame(store, config.fmt, max_pixels())).with_outputs(_FAILED, main="frames")
    results = read.frames | "infer" >> RunInference(model)
    writer = WriteShards(store, sensor, identity) if config.fmt == "tfrecord" else WriteRaw(store, config.fmt, sensor, identity)
    written = results | "write" >> beam.ParDo(writer) | "count" >> beam.CombineGlobally(sum)
    failures = read[_FAILED] | "record failures" >> beam.ParDo(RecordFailure(store))
    _ = failures | "dead letter" >> beam.io.WriteToText(store.path(DEAD_LETTER), shard_name_template="", num_shards=1)
    # The manifest: every committed fragment, listed once all writes are done (the side input waits for them).
    _ = (
        p
        | "manifest" >> beam.Create([None])
        | "committed" >> beam.FlatMap(lambda _, n: store.committed(), beam.pvalue.AsSingleton(written))
        | "spread fragments" >> beam.Reshuffle()
        | "entries" >> beam.FlatMap(_fragment_lines, store)
        | "manifest file" >> beam.io.WriteToText(store.path(MANIFEST), shard_name_template="", num_shards=1)
    )


def pipeline_options(beam_args) -> PipelineOptions:
    """Beam's options: DirectRunner in multi-processing mode, one worker per core, quiet workers, unless `beam_args` say otherwise."""
    cores = len(os.sched_getaffinity(0))
    defaults = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={cores}",
                "--default_sdk_harness_log_level=WARNING"]
    return PipelineOptions([*defaults, *beam_args])  # later flags win


@contextlib.contextmanager
def _log_to(path: str):
    """File descriptor 2 (this process's and the workers' it starts) goes to `path`; `sys.stderr` stays the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb"), line_buffering=True)
    old_stderr = sys.stderr
    with open(path, "wb") as log:
        os.dup2(log.fileno(), 2)
    sys.stderr = terminal
    try:
        yield
    finally:
        sys.stderr = old_stderr
        terminal.close()
        os.dup2(saved, 2)
        os.close(saved)


def _failure_summary(error: BaseException, log: str) -> str:
    """One line for a pipeline that failed: the last line of its error, and where the whole log is."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return f"the conversion failed: {lines[-1] if lines else type(error).__name__} (Beam's log: {log})"


class _Counter:
    """The progress of a running conversion, from the state folder."""

    def __init__(self, store: Store, fmt: str, total: int, skipped: int):
        self.store, self.fmt, self.total, self.skipped = store, fmt, total, skipped
        self.start = time.time()

    def __call__(self) -> Progress:
        since = self.start - 1.0  # a second of slack for the clock of a remote store
        new = [f for f, t in self.store.listing(self.store.state("done"), ".json").items() if t >= since]
        if self.fmt == "tfrecord":  # a fragment per shard: count its lines
            converted = sum(len(self.store.read_text(self.store.state("done", f)).splitlines()) for f in new)
        else:
            converted = len(new)
        failed = len(self.store.listing(self.store.state("failed"), ".txt"))
        return Progress(self.total, converted, failed, self.skipped, time.time() - self.start)


@contextlib.contextmanager
def _reporting(counter: _Counter, on_progress, every: float):
    """Calls `on_progress(counter())` every `every` seconds while the block runs."""
    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            with contextlib.suppress(OSError):
                on_progress(counter())

    thread = threading.Thread(target=loop, daemon=True)
    if on_progress is not None:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()


def _check_settings(store: Store, settings: dict) -> None:
    """Writes the folder's settings, or ValueError if it holds outputs made with other ones."""
    if store.exists(store.settings):
        held = json.loads(store.read_text(store.settings))
        differ = {k: (held.get(k), v) for k, v in settings.items() if held.get(k) != v}
        if differ:
            said = ", ".join(f"{k} {old} (now {new})" for k, (old, new) in differ.items())
            raise ValueError(f"{store.root}: holds outputs made with other settings: {said}; convert into another --out folder")
        return
    store.write_text(store.settings, json.dumps(settings, indent=1) + "\n")


def convert(inputs, out, *, model_path: str | None = None, config: ConvertConfig = ConvertConfig(), beam_args=(),
            on_progress=None, progress_seconds: float = PROGRESS_SECONDS) -> ConvertReport:
    """Converts every input image (files, globs, folders, lists: `inputs.expand`) into `out`; see the module docstring.

    Inputs already converted into `out` (with the same settings) are skipped. Returns the run's
    counts; `report.failures` are the dead-letter file's lines. `on_progress(Progress)` is
    called every `progress_seconds` while the pipeline runs.
    """
    store = Store(out)
    paths = list(dict.fromkeys(expand(inputs)))  # each input once
    names = output_names(paths, config.fmt) if config.fmt != "tfrecord" else {}
    with handlers.local_model_file(model_path) as local:
        runner = handlers.load_runner(local)  # a bad model file, tile or overlap: one error before any worker starts
        model_sha256 = sha256(Path(local))
    handlers.run_frame(runner, np.zeros((runner.align, runner.align, 3), np.uint8), config.tile, config.overlap, config.batch_size)
    if store.local:
        check_writable_dir(out)
        os.makedirs(out, exist_ok=True)
    store.make_dirs()
    _check_settings(store, config.settings(model_sha256))
    store.delete(sorted(store.state("staging", f) for f in store.listing(store.state("staging"))))  # a killed run's
    store.delete(sorted(store.state("failed", f) for f in store.listing(store.state("failed"))))  # tried again now
    if store.local:
        remove_stale_temporaries(out)
    committed = store.committed()
    if config.fmt == "tfrecord":
        done = {e["input"] for output in committed for e in store.manifest_lines(output)}
    else:
        done = {p for p in paths if names[p] in set(committed)}
    todo = [p for p in paths if p not in done]
    store.write_text(store.todo, "".join(p + "\n" for p in todo))
    identity = {"model_sha256": model_sha256, "metadata": config.metadata}
    log = store.log if store.local else os.path.join(tempfile.gettempdir(), f"revisp-convert-{os.getpid()}.log")
    counter = _Counter(store, config.fmt, len(paths), len(paths) - len(todo))
    try:
        with _log_to(log), _reporting(counter, on_progress, progress_seconds):
            with beam.Pipeline(options=pipeline_options(beam_args)) as p:
                build(p, store, config, None if model_path is None else str(model_path), identity)
    except Exception as e:  # Beam reports a worker's error as many types, with its whole traceback
        raise ConversionFailed(_failure_summary(e, log)) from e
    failures = [ln for ln in store.read_text(store.path(DEAD_LETTER)).splitlines() if ln]
    final = counter()
    return ConvertReport(dataclasses.replace(final, failed=len(failures)), store.path(MANIFEST), store.path(DEAD_LETTER), log, failures)
