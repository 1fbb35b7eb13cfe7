"""Demosaiced-RAW ground truth: each GT bayer passed through the pretrained Demosaic Net.

For every RAW file of a dataset folder, `prepare_gt` writes `NAME.demosaic.npy` beside it
(`scan.demosaic_path`): float16, shape (H, W, 3), linear camera RGB in model units, clipped
to [0, 1] (the U-Nets' outputs are clamped to [0, 1], so nothing outside is reachable).
float16 halves the disk of float32 (1.5 MB per 504 patch); its rounding error, at most
2**-12 below 1.0, is under a quarter of one 10-bit RAW code (1/1024).

Files already done are skipped (delete them, or pass overwrite=True, to redo them). Each file
is written under a temporary name and renamed, so an interruption never leaves a partial file
and a rerun picks up where it stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
from absl import logging
from tqdm import tqdm

from revisp_tf.data.examples import read_raw
from revisp_tf.data.scan import BadFile, DataError, demosaic_path, raw_files
from revisp_tf.io.images import write_npy
from revisp_tf.isp.sensor import SensorSpec

GT_DTYPE = np.float16


@dataclasses.dataclass
class PrepareReport:
    """What a `prepare_gt` run did: files written, files already done, bad RAW files skipped."""

    written: int = 0
    already_done: int = 0
    skipped: list[BadFile] = dataclasses.field(default_factory=list)


def _default_demosaic():
    from revisp_tf.models.demosaicnet import demosaic

    return demosaic


def _write_batch(paths: list[Path], packed: list[np.ndarray], demosaic_fn) -> None:
    """Demosaics one batch of equal-shaped packed arrays and writes each result atomically."""
    batch = np.stack(packed)
    out = np.asarray(demosaic_fn(batch))
    n, h, w, _ = batch.shape
    want = (n, 2 * h, 2 * w, 3)
    if out.shape != want:
        raise ValueError(f"demosaic function returned shape {out.shape} for input {batch.shape}; expected {want}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"demosaic function returned non-finite values for {paths[0]} ...; expected finite values")
    for path, gt in zip(paths, np.clip(out, 0.0, 1.0).astype(GT_DTYPE)):
        write_npy(demosaic_path(path), gt)


def prepare_gt(
    data_dir,
    sensor: SensorSpec,
    layout: str = "aim22",
    batch_size: int = 8,
    demosaic_fn: Callable | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PrepareReport:
    """Writes the demosaiced-RAW ground truth beside every RAW file of `data_dir` (see the module docstring).

    Args:
      data_dir: a dataset folder in `layout` ("aim22" or "folder", see `scan`).
      sensor: how the stored RAW maps to model units.
      batch_size: RAW files demosaiced per call.
      demosaic_fn: packed RGGB (N, h, w, 4) in [0, 1] -> (N, 2h, 2w, 3); default the pretrained Demosaic Net.
      skip_bad: log and skip bad RAW files (listed in the report) instead of stopping at the first.
      overwrite: redo files that are already done.
      progress: show a progress bar.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    demosaic_fn = demosaic_fn or _default_demosaic()
    raws = raw_files(data_dir, layout)
    if not raws:
        raise DataError(f"{data_dir}: no RAW files found ({layout} layout)")
    todo = [p for p in raws if overwrite or not demosaic_path(p).is_file()]
    report = PrepareReport(already_done=len(raws) - len(todo))
    pending: dict[tuple, tuple[list, list]] = {}  # packed shape -> (paths, arrays) waiting for a full batch
    with tqdm(total=len(todo), desc="prepare-gt", unit="file", disable=not (progress and todo)) as bar:
        for path in todo:
            try:
                packed = read_raw(path, sensor)
            except DataError as e:
                if not skip_bad:
                    raise
                report.skipped.append(BadFile.from_error(path, e))
                logging.warning("skipping %s", e)
                bar.update(1)
                continue
            paths, arrays = pending.setdefault(packed.shape, ([], []))
            paths.append(path)
            arrays.append(packed)
            if len(paths) == batch_size:
                _write_batch(*pending.pop(packed.shape), demosaic_fn)
                report.written += batch_size
                bar.update(batch_size)
        for paths, arrays in pending.values():
            _write_batch(paths, arrays, demosaic_fn)
            report.written += len(paths)
            bar.update(len(paths))
    return report
