"""Capture metadata: the gains a camera (or an ISP) applied to one frame, as its maker notes record them.

One schema, wherever the numbers come from (make-pairs' meta.json, `infer --metadata FILE.json`,
a camera JPEG's EXIF, `infer --wb R,B --exposure-gain G`):

    {"wb": [R, 1.0, B], "exposure_gain": G | null,
     "exposure_time": s | null, "f_number": N | null, "iso": S | null, "source": "..."}

- wb: the white-balance multipliers applied to the camera RAW (0 at black, 1 at white), per
  channel, green's = 1: RAW (R, G, B) * wb is white-balanced camera RGB.
- exposure_gain: the linear gain applied on top of the white balance, in the same units, before
  the colour matrix and tone curve (1: none); null where unknown (a camera's JPEG records its
  exposure settings, not its ISP's gain).
- exposure_time (seconds), f_number, iso: the EXIF exposure settings, where known.
- source: where the numbers come from (an ISP, "exif", a file, "argument").

make-pairs writes it per scene under meta.json's "scenes" -> NAME -> "capture" (`pairs_metadata`
reads them back), and synthetic pairs per patch ("patches" -> [i] -> "capture": each patch has
its own exposure; `patch_captures` takes a patch's own before its scene's). Camera JPEGs are
read with ExifTool (`Composite:RedBalance` / `BlueBalance`, which it derives from every maker's
notes: Canon WB_RGGBLevelsAsShot, Nikon WB_RBLevels, Olympus, Panasonic, Sony, ...). No
TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from pathlib import Path

from revisp_tf.data.layout import META_NAME
from revisp_tf.tools import find_tool

EXIF_TAGS = ("RedBalance", "BlueBalance", "ExposureTime", "FNumber", "ISO")
_EXIFTOOL_TIMEOUT_S = 120
_FIELDS = ("wb", "exposure_gain", "exposure_time", "f_number", "iso", "source")


def _positive(value, name: str, where: str, optional: bool = True) -> float | None:
    """A finite positive float, None (if optional), or ValueError naming `where`."""
    if value is None and optional:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0) or isinstance(value, bool):
        raise ValueError(f"{where}: {name} must be a positive number, got {value!r}")
    return v


@dataclasses.dataclass(frozen=True)
class CaptureMetadata:
    """The gains applied to one frame (see the module doc for the units).

    Args:
      wb: (R, G, B) white-balance multipliers; normalised to G = 1 on construction.
      exposure_gain: linear gain after white balance, or None if unknown.
      source: where the numbers come from.
      exposure_time, f_number, iso: EXIF exposure settings, or None.
    """

    wb: tuple[float, float, float]
    exposure_gain: float | None
    source: str
    exposure_time: float | None = None
    f_number: float | None = None
    iso: float | None = None

    def __post_init__(self):
        where = f"capture metadata ({self.source})"
        try:
            r, g, b = (_positive(v, "wb", where, optional=False) for v in self.wb)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: wb must be 3 positive (R, G, B) multipliers, got {self.wb!r}") from None
        object.__setattr__(self, "wb", (r / g, 1.0, b / g))
        for name in ("exposure_gain", "exposure_time", "f_number", "iso"):
            object.__setattr__(self, name, _positive(getattr(self, name), name, where))
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"capture metadata: source must be a non-empty string, got {self.source!r}")

    @property
    def as_shot_neutral(self) -> tuple[float, float, float]:
        """The camera RGB of white, a DNG's AsShotNeutral: 1 / wb, green's = 1."""
        return tuple(1.0 / g for g in self.wb)

    def to_json(self) -> dict:
        """The schema's JSON object (every field, null where unknown)."""
        return {"wb": list(self.wb), **{k: getattr(self, k) for k in _FIELDS[1:]}}

    @classmethod
    def from_json(cls, d, where: str = "capture metadata") -> "CaptureMetadata":
        """The schema's JSON object -> CaptureMetadata; ValueError naming `where` for unknown or bad fields."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a JSON object with {', '.join(_FIELDS)}, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown or "wb" not in d or "source" not in d:
            what = f"unknown field(s) {', '.join(unknown)}" if unknown else "no 'wb' or no 'source'"
            raise ValueError(f"{where}: {what}; expected the fields {', '.join(_FIELDS)}")
        try:
            return cls(**{**{k: None for k in _FIELDS[1:]}, **d, "wb": tuple(d["wb"]) if isinstance(d["wb"], list) else d["wb"]})
        except ValueError as e:
            raise ValueError(f"{where}: {str(e).split(': ', 1)[-1]}") from None


# ---- reading it back -----------------------------------------------------------------------------


def pairs_metadata(data_dir) -> dict[str, CaptureMetadata | None]:
    """Scene name -> the capture metadata make-pairs recorded in `data_dir`/meta.json (None for a scene without).

    The scene of a patch `{scene}_{k}` is its file stem up to the last '_'. ValueError naming the
    file if meta.json is missing or malformed.
    """
    path, scenes = _scenes(data_dir)
    return {
        name: None if entry.get("capture") is None else CaptureMetadata.from_json(entry["capture"], f"{path}: scene {name}")
        for name, entry in scenes.items()
    }


def _scenes(data_dir) -> tuple[Path, dict]:
    """(path, "scenes" mapping) of the meta.json in `data_dir`; ValueError naming it if missing or malformed."""
    path = Path(data_dir) / META_NAME
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read it ({e}); expected the meta.json make-pairs writes") from None
    scenes = meta.get("scenes") if isinstance(meta, dict) else None
    if not isinstance(scenes, dict):
        raise ValueError(f"{path}: no 'scenes' mapping; expected the meta.json make-pairs writes")
    return path, scenes


def patch_captures(rgb_paths) -> list[CaptureMetadata | None]:
    """The capture metadata of each patch `{scene}_{k}.jpg|png` from the meta.json beside it.

    A patch's own "capture" (synthetic pairs) wins over its scene's; None: no meta.json, scene
    or capture.
    """
    folders: dict[Path, dict] = {}
    out = []
    for p in map(Path, rgb_paths):
        if p.parent not in folders:
            folders[p.parent] = _patch_metadata(p.parent) if (p.parent / META_NAME).is_file() else {}
        known = folders[p.parent]
        out.append(known.get(p.stem, known.get(p.stem.rpartition("_")[0])))
    return out


def _patch_metadata(data_dir: Path) -> dict[str, CaptureMetadata | None]:
    """Scene name -> its capture, and `{scene}_{k}` -> a patch's own capture where it has one."""
    path, scenes = _scenes(data_dir)
    out = {}
    for name, entry in scenes.items():
        if entry.get("capture") is not None:
            out[name] = CaptureMetadata.from_json(entry["capture"], f"{path}: scene {name}")
        for patch in entry.get("patches", []):
            if isinstance(patch, dict) and patch.get("capture") is not None:
                where = f"{path}: scene {name} patch {patch.get('k')}"
                out[f"{name}_{patch.get('k')}"] = CaptureMetadata.from_json(patch["capture"], where)
    return out


def read_metadata_json(path) -> CaptureMetadata | dict[str, CaptureMetadata]:
    """A --metadata FILE.json: one capture object (for every input), or {image stem: capture object}."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read it as JSON ({e}); expected capture metadata") from None
    if isinstance(d, dict) and "wb" in d:
        return CaptureMetadata.from_json(d, str(path))
    if isinstance(d, dict) and d and all(isinstance(v, dict) for v in d.values()):
        return {stem: CaptureMetadata.from_json(v, f"{path}: {stem}") for stem, v in d.items()}
    raise ValueError(f"{path}: expected one capture object ({', '.join(_FIELDS)}) or a mapping of image stems to them")


def _number(value) -> float | None:
    """An ExifTool -n value: a number, or a string of numbers (Nikon's ISO "0 200": its last); None if neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    parts = str(value).split() if value is not None else []
    try:
        return float(parts[-1]) if parts else None
    except ValueError:
        return None


def capture_from_exif(record: dict) -> CaptureMetadata | None:
    """One ExifTool -j -n record -> CaptureMetadata, or None when it holds no white balance (phones record none)."""
    red, blue = _number(record.get("RedBalance")), _number(record.get("BlueBalance"))
    if not red or not blue or red <= 0 or blue <= 0:
        return None
    settings = {k: _number(record.get(tag)) for k, tag in (("exposure_time", "ExposureTime"), ("f_number", "FNumber"), ("iso", "ISO"))}
    settings = {k: v if v and v > 0 else None for k, v in settings.items()}
    return CaptureMetadata(wb=(red, 1.0, blue), exposure_gain=None, source="exif", **settings)


def read_exif(paths) -> dict[Path, CaptureMetadata | None]:
    """Each image's capture metadata from its EXIF and maker notes (ExifTool, one call for all), None where it has none."""
    paths = [Path(p) for p in paths]
    if not paths:
        return {}
    cmd = [find_tool("exiftool"), "-j", "-n", *(f"-{t}" for t in EXIF_TAGS), "--", *map(str, paths)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_EXIFTOOL_TIMEOUT_S)
    try:
        records = json.loads(proc.stdout) if proc.stdout.strip() else []
    except ValueError:
        raise ValueError(f"exiftool printed no JSON for {paths[0]}...: {proc.stderr.strip()[:200]}") from None
    by_file = {r.get("SourceFile"): r for r in records}
    return {p: capture_from_exif(by_file.get(str(p), {})) for p in paths}


def parse_wb(text: str) -> tuple[float, float, float]:
    """'R,B' (the red and blue multipliers over green's) -> (R, 1, B); ValueError if not two positive numbers."""
    parts = str(text).split(",")
    try:
        r, b = (float(p) for p in parts)
    except ValueError:
        r = b = math.nan
    if len(parts) != 2 or not all(math.isfinite(v) and v > 0 for v in (r, b)):
        raise ValueError(f"--wb: expected R,B (two positive multipliers over green's, e.g. 2.07,1.19), got {text!r}")
    return (r, 1.0, b)


def capture_metadata_for(paths, metadata: str = "none", wb=None, exposure_gain=None) -> dict[Path, CaptureMetadata | None]:
    """Each input image's capture metadata for `infer`.

    Args:
      paths: the input images.
      metadata: "exif" (each image's own, ExifTool), "none", or a .json file (`read_metadata_json`).
      wb: (R, G, B) multipliers for every image (`--wb`), overriding the source's.
      exposure_gain: for every image (`--exposure-gain`), overriding the source's.
    Returns {path: CaptureMetadata, or None where there is none (the caller says so)}.
    """
    paths = [Path(p) for p in paths]
    exposure_gain = _positive(exposure_gain, "--exposure-gain", "infer")
    if metadata == "exif":
        found = read_exif(paths)
    elif metadata == "none":
        found = dict.fromkeys(paths)
    elif str(metadata).lower().endswith(".json"):
        given = read_metadata_json(metadata)
        found = {p: given.get(p.stem) if isinstance(given, dict) else given for p in paths}
    else:
        raise ValueError(f"--metadata: expected exif, none or a .json file, got {metadata!r}")
    if wb is None and exposure_gain is None:
        return found
    if wb is None and metadata == "none":
        raise ValueError("--exposure-gain: give the white balance too (--wb R,B, or --metadata exif or FILE.json)")
    out = {}
    for p, m in found.items():
        if m is None and wb is None:
            out[p] = None  # an exposure gain alone says nothing of the white balance
            continue
        base = m if m is not None else CaptureMetadata(wb=wb, exposure_gain=None, source="argument")
        changes = {"wb": wb} if wb is not None else {}
        if exposure_gain is not None:
            changes["exposure_gain"] = exposure_gain
        source = base.source if base.source == "argument" else f"{base.source} + argument"
        out[p] = dataclasses.replace(base, **changes, source=source)
    return out
