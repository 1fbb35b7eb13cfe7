"""Where tests, benchmarks and weight converters find real camera data, which the project never ships.

`$REVISP_REALDATA` when set, else `../shared/realdata` beside the checkout. Whoever reads it skips,
saying so, when the folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "REVISP_REALDATA"


def realdata_dir() -> Path:
    """The real-data folder (it may not exist)."""
    return Path(os.environ.get(ENV) or Path(__file__).resolve().parents[2] / "shared" / "realdata")
