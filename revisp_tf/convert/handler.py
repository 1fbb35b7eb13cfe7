"""RunInference's model handler for a reverse-ISP model: `infer`'s tiled inference, one frame at a time.

The model is loaded once per worker (RunInference's `load_model`), in its inference form, with
`TiledInference` built around it: tiles batched `batch_size` at a time, the dual net's OE branch
run only on tiles with an overexposed pixel, a global-stage model given its frame context, all
exactly as `revisp-tf infer` does. Frames go through one at a time (their sizes differ); each
comes back as its packed bayer, float32 model units.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from revisp_tf.infer.tiled import TiledInference
from revisp_tf.models.inference_form import load_inference_model
from revisp_tf.infer.files import frame_context_of
from revisp_tf.weights import default_model_path


@dataclasses.dataclass
class Frame:
    """An input image on its way through the pipeline: its path, output name, sha256, samples and start time."""

    path: str
    output: str
    sha256: str
    rgb: np.ndarray
    started: float = dataclasses.field(default_factory=time.time)


@contextlib.contextmanager
def local_model_file(model_path: str | None) -> Iterator[str]:
    """The model file as a local path: a copy while the block runs for gs:// or s3://; None: the shipped model, checked."""
    if model_path is None or FileSystems.get_scheme(model_path) is None:
        yield str(model_path or default_model_path())
        return
    folder = tempfile.mkdtemp(prefix="revisp-model-")
    try:
        local = os.path.join(folder, FileSystems.split(model_path)[1])
        with FileSystems.open(model_path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_runner(model_path: str | None) -> TiledInference:
    """The model at `model_path` (local, gs://, s3://; None: the shipped one) in its inference form, ready to tile."""
    with local_model_file(model_path) as local:
        return TiledInference(load_inference_model(local))


def run_frame(runner: TiledInference, rgb: np.ndarray, tile: int, overlap: int, batch_size: int) -> np.ndarray:
    """The (H/2, W/2, 4) float32 packed bayer of one frame, as `infer` computes it."""
    return runner(rgb, tile, overlap, batch_size, context=frame_context_of(runner.model, rgb))


class TiledModelHandler(ModelHandler[Frame, PredictionResult, TiledInference]):
    """Frames -> PredictionResult(frame, packed bayer) through `TiledInference`.

    Args:
      model_path: a .keras model (local, gs:// or s3://), or None for the shipped model as the
        worker's installed revisp-tf has it.
      tile, overlap, batch_size: as `revisp-tf infer --tile --overlap --batch-size`.
    """

    def __init__(self, model_path: str | None, tile: int, overlap: int, batch_size: int):
        super().__init__(max_batch_size=1)  # frames differ in size: each is its own batch of tiles
        self.model_path, self.tile, self.overlap, self.batch_size = model_path, tile, overlap, batch_size

    def load_model(self) -> TiledInference:
        return load_runner(self.model_path)

    def run_inference(self, batch: Sequence[Frame], model: TiledInference, inference_args=None) -> Iterable[PredictionResult]:
        return [PredictionResult(f, run_frame(model, f.rgb, self.tile, self.overlap, self.batch_size)) for f in batch]

    def get_num_bytes(self, batch: Sequence[Frame]) -> int:
        return sum(f.rgb.nbytes for f in batch)  # the default pickles the batch to measure it

    def get_metrics_namespace(self) -> str:
        return "revisp_tf"
