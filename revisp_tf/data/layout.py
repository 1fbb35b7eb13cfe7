"""File-name conventions of paired data, in one place (no TensorFlow: the LiteRT runner uses them too).

- AIM 2022 splits each frame into a 6 x 8 grid of equal patches named `{scene}_{k}`,
  `k = 8*row + col` (S7: 504 px RGB / 252 px packed RAW patches of a 3024x4032 frame).
- `make-pairs` and the synthetic pairs describe their patches in a `meta.json` in the folder.
- RGB inputs are JPEG or PNG files.
"""

from __future__ import annotations

import re
from pathlib import Path

AIM22_ROWS, AIM22_COLS = 6, 8
META_NAME = "meta.json"
RGB_SUFFIXES = (".jpg", ".jpeg", ".png")
_PATCH_NAME = re.compile(r"^(?P<scene>.+)_(?P<k>\d+)$")


def aim22_name(stem: str) -> tuple[str, int] | None:
    """(scene, k) of a file stem `{scene}_{k}`, or None for any other name."""
    m = _PATCH_NAME.match(stem)
    return (m["scene"], int(m["k"])) if m else None


def patch_key(path: Path) -> tuple[str, int]:
    """(scene, k) of an AIM 2022 patch file, or ValueError naming it."""
    key = aim22_name(Path(path).stem)
    if key is None:
        raise ValueError(f"{path}: expected a patch file named {{scene}}_{{k}} (AIM 2022 layout, k = 8*row + col)")
    return key
