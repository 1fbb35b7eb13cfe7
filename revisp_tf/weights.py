"""Shipped weight files: where they live and their sha256 check.

They live in the repository's top-level `saved_models/`, installed as the package
`revisp_tf.saved_models` (setup.py) and found with importlib.resources, so a wheel or a
`pip install .` carries them; `$REVISP_TF_MODELS` points elsewhere (the converter scripts'
output). `MANIFEST.json` there maps each file name to its provenance (source package and
version, licence, converter script) and sha256; every load checks the hash, so a corrupted
or swapped file fails loudly instead of silently changing results.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from pathlib import Path

PACKAGE = "revisp_tf.saved_models"
MODELS_DIR = Path(os.environ.get("REVISP_TF_MODELS") or str(importlib.resources.files(PACKAGE)))
MANIFEST = MODELS_DIR / "MANIFEST.json"
# The reverse-ISP model `infer`, `eval` and `export` use when --model is omitted.
SHIPPED_MODEL = "revisp_dual_generic.keras"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def record(path: Path, **provenance) -> None:
    """Adds or replaces the MANIFEST entry for `path` (used by the converter scripts)."""
    entries = read_manifest()
    entries[Path(path).name] = {**provenance, "sha256": sha256(Path(path))}
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")
    tmp.replace(MANIFEST)


def checked_path(name: str) -> Path:
    """Path of a shipped file after verifying its sha256 against the MANIFEST."""
    path = MODELS_DIR / name
    entry = read_manifest().get(name)
    if entry is None:
        raise FileNotFoundError(f"{name} is not listed in {MANIFEST}")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (listed in {MANIFEST})")
    got = sha256(path)
    if got != entry["sha256"]:
        raise ValueError(f"{path}: sha256 {got} does not match MANIFEST {entry['sha256']}")
    return path


def default_model_path() -> Path:
    """The shipped reverse-ISP model, after its sha256 check."""
    return checked_path(SHIPPED_MODEL)
