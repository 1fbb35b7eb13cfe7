"""Sensor specs: the one place each sensor's CFA, levels and normaliser live.

Model units are `stored value / normaliser`, as the AIM 2022 scorer computes them
(`np.load(f) / 1024.`). `black_level` and `white_level` describe the sensor; the
normaliser describes how the challenge stores and scores its RAW.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from revisp_tf.isp.bayer import CANONICAL_CFA, check_pattern


@dataclasses.dataclass(frozen=True)
class SensorSpec:
    """How a sensor's stored RAW values map to model units.

    Args:
      name: short identifier used on the command line.
      cfa: CFA pattern of the stored RAW (after any conversion the dataset applied).
      black_level: stored value of a black pixel.
      white_level: stored value of a saturated pixel.
      normaliser: model units = stored / normaliser (the challenge scorer's divisor).
    """

    name: str
    cfa: str
    black_level: float
    white_level: float
    normaliser: float

    def __post_init__(self):
        object.__setattr__(self, "cfa", check_pattern(self.cfa))
        if not self.white_level > self.black_level >= 0:
            raise ValueError(f"sensor {self.name}: need 0 <= black_level < white_level, got {self.black_level}, {self.white_level}")
        if self.normaliser <= 0:
            raise ValueError(f"sensor {self.name}: normaliser must be positive, got {self.normaliser}")

    def to_model_units(self, stored: np.ndarray) -> np.ndarray:
        """Stored RAW values -> float32 model units."""
        return np.asarray(stored, np.float32) / np.float32(self.normaliser)

    def to_stored(self, units) -> np.ndarray:
        """Model units -> stored uint16 values (challenge submission format: round(raw * normaliser))."""
        v = np.round(np.asarray(units, np.float64) * self.normaliser)
        return np.clip(v, 0, np.iinfo(np.uint16).max).astype(np.uint16)


# AIM 2022 Track 1: RAW already converted from GRBG to packed RGGB, 10-bit, scored / 1024.
SAMSUNG_S7 = SensorSpec("s7", CANONICAL_CFA, black_level=0, white_level=1023, normaliser=1024)
# AIM 2022 Track 2: the Zurich RAW-to-RGB sensor keeps a black offset of about 60; starter code divides by 4*255.
HUAWEI_P20 = SensorSpec("p20", CANONICAL_CFA, black_level=60, white_level=1020, normaliser=1020)
# Data this project makes itself (make-pairs): black removed, white scaled to 1023, scored like Track 1.
PROJECT_10BIT = SensorSpec("project", CANONICAL_CFA, black_level=0, white_level=1023, normaliser=1024)

SENSORS = {s.name: s for s in (SAMSUNG_S7, HUAWEI_P20, PROJECT_10BIT)}


def get_sensor(name: str) -> SensorSpec:
    """Named sensor spec, or ValueError listing the known names."""
    try:
        return SENSORS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown sensor {name!r}; expected one of {', '.join(SENSORS)}") from None
