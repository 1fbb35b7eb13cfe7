import numpy as np
import pytest

from revisp_tf.isp import sensor


def test_challenge_tracks():
    s7, p20 = sensor.get_sensor("s7"), sensor.get_sensor("P20")
    assert (s7.cfa, s7.black_level, s7.white_level, s7.normaliser) == ("RGGB", 0, 1023, 1024)
    assert (p20.black_level, p20.white_level, p20.normaliser, p20.max_stored) == (60, 1020, 1020, 1023)
    assert s7.max_stored == 1023  # defaults to the white level


def test_units_round_trip():
    stored = np.array([[0, 1, 512, 1023]], np.uint16)
    units = sensor.SAMSUNG_S7.to_model_units(stored)
    np.testing.assert_array_equal(units, stored / 1024.0)  # the scorer's np.load(f) / 1024.
    np.testing.assert_array_equal(sensor.SAMSUNG_S7.to_stored(units), stored)
    assert sensor.SAMSUNG_S7.to_stored(np.array([2.0, -1.0])).tolist() == [1023, 0]


def test_stored_values_never_exceed_max_stored():
    """A clamped 1.0 was stored as round(1.0 * 1024) = 1024, above the 1023 of 10-bit files, the DNG's WhiteLevel."""
    for spec in (sensor.SAMSUNG_S7, sensor.PROJECT_10BIT):
        assert spec.to_stored(np.array([1.0, 0.5])).tolist() == [1023, 512]
    assert sensor.HUAWEI_P20.to_stored(np.array([1.0, 2.0])).tolist() == [1020, 1023]


def test_one_conversion_for_arrays_and_tensors():
    import tensorflow as tf

    p20 = sensor.HUAWEI_P20
    stored = np.array([[60, 1020, 1023]], np.uint16)
    expected = stored.astype(np.float32) / np.float32(1020)
    np.testing.assert_array_equal(p20.to_model_units(stored), expected)
    np.testing.assert_array_equal(p20.to_model_units(tf.constant(stored.astype(np.float32))).numpy(), expected)
    mapped = tf.data.Dataset.from_tensors(stored.astype(np.float32)).map(p20.to_model_units)
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), expected)


def test_scoring_units_are_the_scorers_for_every_track():
    """The scorer divides every track's stored values by 1024; a prediction is scored as its stored submission."""
    stored = np.array([0, 60, 511, 1020, 1023], np.uint16)
    for spec in (sensor.SAMSUNG_S7, sensor.HUAWEI_P20, sensor.PROJECT_10BIT):
        units = spec.to_model_units(stored)
        np.testing.assert_array_equal(spec.to_scoring_units(units), stored / 1024.0)
    # P20 model units 0.5 are stored as round(0.5 * 1020) = 510, scored 510 / 1024.
    assert sensor.HUAWEI_P20.to_scoring_units(np.array([0.5])).tolist() == [510 / 1024.0]


def test_bad_specs():
    with pytest.raises(ValueError, match="unknown sensor 'x'"):
        sensor.get_sensor("x")
    with pytest.raises(ValueError, match="black_level < white_level"):
        sensor.SensorSpec("bad", "RGGB", 100, 50, 1)
    with pytest.raises(ValueError, match="unknown CFA"):
        sensor.SensorSpec("bad", "RRGB", 0, 50, 1)
    with pytest.raises(ValueError, match="max_stored 40 is below white_level 50"):
        sensor.SensorSpec("bad", "RGGB", 0, 50, 1, max_stored=40)
