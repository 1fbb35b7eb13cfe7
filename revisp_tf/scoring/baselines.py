"""The classical baselines `eval` scores beside a model.

`upi` (Brooks et al.'s unprocessing with the default camera, the challenge's classical baseline),
`mosaic` (the challenge's sample submission: the RGB itself, mosaiced) and `fitted` (the
camera-fitted global inverse, fitted in closed form on given pairs).
"""

from __future__ import annotations

import numpy as np

from revisp_tf.checks import check_choice
from revisp_tf.choices import BASELINES
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.sensor import SensorSpec
from revisp_tf.isp.unprocess import default_params, unprocess_to_bayer


def baseline_bayer(name: str, rgb: np.ndarray, fitted=None) -> np.ndarray:
    """Packed RGGB prediction of a classical baseline for RGB in [0, 1]; "fitted" needs `fitted` (GlobalInverse)."""
    check_choice("baseline", name, BASELINES)
    if name == "fitted":
        if fitted is None:
            raise ValueError("baseline fitted: needs pairs to fit the global inverse on (eval --fit-data DIR)")
        return fitted.predict(rgb)
    if name == "upi":
        return np.clip(unprocess_to_bayer(rgb, default_params()).numpy(), 0.0, 1.0)
    return mosaic(rgb).numpy()


def fit_baseline(examples, sensor: SensorSpec):
    """The "fitted" baseline: the global inverse fitted in closed form on (RGB, RAW) examples."""
    from revisp_tf.data.examples import read_example
    from revisp_tf.global_stage.fit import fit_global_inverse

    if not examples:
        raise ValueError("baseline fitted: no pairs to fit on (eval --fit-data DIR)")
    rgbs, bayers = zip(*(read_example(ex, sensor) for ex in examples))
    return fit_global_inverse(list(rgbs), list(bayers))
