import numpy as np
import pytest

from revisp_tf.isp import sensor


def test_challenge_tracks():
    s7, p20 = sensor.get_sensor("s7"), sensor.get_sensor("P20")
    assert (s7.cfa, s7.black_level, s7.white_level, s7.normaliser) == ("RGGB", 0, 1023, 1024)
    assert (p20.black_level, p20.white_level, p20.normaliser) == (60, 1020, 1020)


def test_units_round_trip():
    stored = np.array([[0, 1, 512, 1023]], np.uint16)
    units = sensor.SAMSUNG_S7.to_model_units(stored)
    np.testing.assert_array_equal(units, stored / 1024.0)  # the scorer's np.load(f) / 1024.
    np.testing.assert_array_equal(sensor.SAMSUNG_S7.to_stored(units), stored)
    assert sensor.SAMSUNG_S7.to_stored(np.array([2.0, -1.0])).tolist() == [2048, 0]


def test_bad_specs():
    with pytest.raises(ValueError, match="unknown sensor 'x'"):
        sensor.get_sensor("x")
    with pytest.raises(ValueError, match="black_level < white_level"):
        sensor.SensorSpec("bad", "RGGB", 100, 50, 1)
    with pytest.raises(ValueError, match="unknown CFA"):
        sensor.SensorSpec("bad", "RRGB", 0, 50, 1)
