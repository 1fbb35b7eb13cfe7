"""Argument checks shared by the library, in NumPy only: one wording for each kind of bad value."""

from __future__ import annotations

import numpy as np


def check_choice(what: str, value, allowed, error: type[Exception] = ValueError):
    """`value` if it is one of `allowed`; otherwise `error` "unknown WHAT 'value'; expected one of a, b"."""
    if value not in allowed:
        raise error(f"unknown {what} {value!r}; expected one of {', '.join(map(str, allowed))}")
    return value


def check_unit_range(values: np.ndarray, name: str) -> None:
    """ValueError naming `name` unless every value is finite and in [0, 1]."""
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{name}: expected finite values in [0, 1], got {np.size(values) - finite.sum()} non-finite values")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(f"{name}: expected values in [0, 1], got min {values.min():.4g}, max {values.max():.4g}")
