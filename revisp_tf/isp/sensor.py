"""Sensor specs: the one place each sensor's CFA, levels and normalisers live.

Two units, kept apart:
- model units (what the networks see and predict) are per sensor: `stored / normaliser`
  (`SensorSpec.to_model_units`, the one conversion eval, prepare-gt and the tf.data pipeline use);
- scoring units are the AIM 2022 scorer's for every track, P20 included: `stored / 1024`
  (`np.load(f) / 1024.`, scoring/evaluation.py knows no black level). A prediction is scored as
  the submission file that holds it: `round(units * normaliser) / 1024` (`to_scoring_units`).
`black_level` and `white_level` describe the sensor; `max_stored` is the largest value its
files may hold (10-bit files: 1023, even where the sensor saturates lower).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from revisp_tf.isp.bayer import CANONICAL_CFA, check_pattern

# scoring/evaluation.py divides every track's stored RAW by 1024.
SCORER_NORMALISER = 1024.0


@dataclasses.dataclass(frozen=True)
class SensorSpec:
    """How a sensor's stored RAW values map to model units.

    Args:
      name: short identifier used on the command line.
      cfa: CFA pattern of the stored RAW (after any conversion the dataset applied).
      black_level: stored value of a black pixel.
      white_level: stored value of a saturated pixel.
      normaliser: model units = stored / normaliser.
      max_stored: the largest stored value a file may hold; default `white_level`.
    """

    name: str
    cfa: str
    black_level: float
    white_level: float
    normaliser: float
    max_stored: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "cfa", check_pattern(self.cfa))
        if not self.white_level > self.black_level >= 0:
            raise ValueError(f"sensor {self.name}: need 0 <= black_level < white_level, got {self.black_level}, {self.white_level}")
        if self.normaliser <= 0:
            raise ValueError(f"sensor {self.name}: normaliser must be positive, got {self.normaliser}")
        if self.max_stored is None:
            object.__setattr__(self, "max_stored", self.white_level)
        if self.max_stored < self.white_level:
            raise ValueError(f"sensor {self.name}: max_stored {self.max_stored} is below white_level {self.white_level}")

    def to_model_units(self, stored):
        """Stored RAW values -> float32 model units (a NumPy array for arrays, a tensor for tensors)."""
        if tf.is_tensor(stored):
            return tf.cast(stored, tf.float32) / self.normaliser
        return np.asarray(stored, np.float32) / np.float32(self.normaliser)

    def to_stored(self, units) -> np.ndarray:
        """Model units -> stored uint16 values: round(raw * normaliser), clipped to [0, max_stored].

        The one convention for every file the project writes (challenge `.npy`, DNG, pairs): a stored
        value never exceeds `max_stored`, the largest value the sensor's files hold and the DNG's
        WhiteLevel, so a clamped 1.0 is stored as 1023 on a 10-bit sensor, not 1024 (which the scorer
        would take, but no real file of the sensor holds and `scan` rejects).
        """
        v = np.round(np.asarray(units, np.float64) * self.normaliser)
        return np.clip(v, 0, self.max_stored).astype(np.uint16)

    def to_scoring_units(self, units) -> np.ndarray:
        """Model units -> the scorer's units (float64): the stored submission value / 1024."""
        return self.to_stored(units).astype(np.float64) / SCORER_NORMALISER


# AIM 2022 Track 1: RAW already converted from GRBG to packed RGGB, 10-bit, scored / 1024.
SAMSUNG_S7 = SensorSpec("s7", CANONICAL_CFA, black_level=0, white_level=1023, normaliser=1024)
# AIM 2022 Track 2: the Zurich RAW-to-RGB sensor keeps a black offset of about 60 and saturates near 1020;
# the starter code's model units divide by 4*255; the files are 10-bit (up to 1023) and scored / 1024.
HUAWEI_P20 = SensorSpec("p20", CANONICAL_CFA, black_level=60, white_level=1020, normaliser=1020, max_stored=1023)
# Data this project makes itself (make-pairs): black removed, white scaled to 1023, scored like Track 1.
PROJECT_10BIT = SensorSpec("project", CANONICAL_CFA, black_level=0, white_level=1023, normaliser=1024)

SENSORS = {s.name: s for s in (SAMSUNG_S7, HUAWEI_P20, PROJECT_10BIT)}


def get_sensor(name: str) -> SensorSpec:
    """Named sensor spec, or ValueError listing the known names."""
    try:
        return SENSORS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown sensor {name!r}; expected one of {', '.join(SENSORS)}") from None
