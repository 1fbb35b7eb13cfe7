"""The TFRecord output of `revisp-tf convert`: one `tf.train.Example` per input image.

Feature spec (`FEATURES`; every feature is present in every record):

| key | type | value |
|---|---|---|
| `raw` | bytes | the packed bayer (h, w, 4) as uint16 little-endian, row-major: exactly the body of the `.npy` that `infer --format npy` writes (`SensorSpec.to_stored` of the model's output) |
| `shape` | int64 × 3 | (h, w, 4): half the RGB image's height and width, 4 channels |
| `cfa` | bytes | the packed channel order, `RGGB`: channel 0 = (0,0), 1 = (0,1), 2 = (1,0), 3 = (1,1) of each 2x2 tile |
| `black_level`, `white_level` | float | the sensor's levels in stored units |
| `normaliser` | float | model units = stored / normaliser |
| `sensor` | bytes | the sensor's name (`--sensor`) |
| `rgb_path` | bytes | the input image, as given to `convert` |

`read_records(pattern)` gives them back as a `tf.data.Dataset` of dicts (`raw` a uint16
(h, w, 4) tensor); `parse_record` is its map function, for a pipeline of your own.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from revisp_tf.isp.sensor import SensorSpec

SUFFIX = ".tfrecord"
FEATURES = {
    "raw": tf.io.FixedLenFeature([], tf.string),
    "shape": tf.io.FixedLenFeature([3], tf.int64),
    "cfa": tf.io.FixedLenFeature([], tf.string),
    "black_level": tf.io.FixedLenFeature([], tf.float32),
    "white_level": tf.io.FixedLenFeature([], tf.float32),
    "normaliser": tf.io.FixedLenFeature([], tf.float32),
    "sensor": tf.io.FixedLenFeature([], tf.string),
    "rgb_path": tf.io.FixedLenFeature([], tf.string),
}


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _floats(*values: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def raw_example(stored: np.ndarray, sensor: SensorSpec, rgb_path: str) -> bytes:
    """The serialized `tf.train.Example` of a packed bayer of stored uint16 values (h, w, 4)."""
    stored = np.asarray(stored)
    if stored.dtype != np.uint16 or stored.ndim != 3 or stored.shape[-1] != 4:
        raise ValueError(f"{rgb_path}: expected a packed bayer (h, w, 4) uint16, got {stored.shape} {stored.dtype}")
    feature = {
        "raw": _bytes(stored.astype("<u2").tobytes()),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(stored.shape))),
        "cfa": _bytes(sensor.cfa.encode()),
        "black_level": _floats(sensor.black_level),
        "white_level": _floats(sensor.white_level),
        "normaliser": _floats(sensor.normaliser),
        "sensor": _bytes(sensor.name.encode()),
        "rgb_path": _bytes(str(rgb_path).encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_record(serialized) -> dict:
    """One serialized record -> dict of tensors, `raw` decoded to uint16 (h, w, 4)."""
    features = tf.io.parse_single_example(serialized, FEATURES)
    raw = tf.io.decode_raw(features["raw"], tf.uint16, little_endian=True)
    return {**features, "raw": tf.reshape(raw, features["shape"])}


def read_records(pattern, *, parallel_reads: int = 4) -> tf.data.Dataset:
    """The records of every shard matching `pattern` (a glob or a list of files), parsed (`parse_record`)."""
    files = tf.io.gfile.glob(pattern) if isinstance(pattern, str) else list(pattern)
    if not files:
        raise ValueError(f"{pattern}: no TFRecord files match")
    records = tf.data.TFRecordDataset(sorted(files), num_parallel_reads=min(parallel_reads, len(files)))
    return records.map(parse_record, num_parallel_calls=tf.data.AUTOTUNE)
