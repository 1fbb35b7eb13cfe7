"""The TFRecord feature spec of `revisp-tf convert --format tfrecord`: records hold exactly the .npy output."""

import io

import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.convert.tfrecord import parse_record, raw_example, read_records
from revisp_tf.isp.sensor import HUAWEI_P20


@pytest.fixture
def stored():
    return np.random.default_rng(0).integers(0, 1024, (6, 10, 4)).astype(np.uint16)


def test_the_raw_feature_is_the_npy_body(stored):
    example = tf.train.Example.FromString(raw_example(stored, HUAWEI_P20, "a/b.jpg"))
    buffer = io.BytesIO()
    np.save(buffer, stored)
    npy = buffer.getvalue()
    body = example.features.feature["raw"].bytes_list.value[0]
    assert npy.endswith(body) and len(body) == stored.size * 2  # little-endian uint16, row-major
    assert list(example.features.feature["shape"].int64_list.value) == [6, 10, 4]


def test_written_records_read_back_eagerly_and_in_a_dataset(stored, tmp_path):
    other = stored[:4, :6] + 1
    path = tmp_path / "records-x.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(raw_example(stored, HUAWEI_P20, "a/b.jpg"))
        writer.write(raw_example(other, HUAWEI_P20, "c.png"))
    eager = parse_record(tf.constant(raw_example(other, HUAWEI_P20, "c.png")))
    np.testing.assert_array_equal(eager["raw"].numpy(), other)
    records = list(read_records(str(tmp_path / "*.tfrecord")).as_numpy_iterator())
    np.testing.assert_array_equal(records[0]["raw"], stored)
    np.testing.assert_array_equal(records[1]["raw"], other)
    first = records[0]
    assert first["raw"].dtype == np.uint16 and first["rgb_path"] == b"a/b.jpg" and first["cfa"] == b"RGGB"
    assert (first["black_level"], first["white_level"], first["normaliser"], first["sensor"]) == (60.0, 1020.0, 1020.0, b"p20")


def test_refusals(stored, tmp_path):
    with pytest.raises(ValueError, match="x.jpg: expected a packed bayer"):
        raw_example(stored.astype(np.float32), HUAWEI_P20, "x.jpg")
    with pytest.raises(ValueError, match="no TFRecord files match"):
        read_records(str(tmp_path / "*.tfrecord"))
