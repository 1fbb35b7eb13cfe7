"""Where each patch sits in its frame, and the frame-level context of each patch (global stage).

A patch's position comes from, in this order:
- the `meta.json` beside it (what `make-pairs` writes: each patch's `y`, `x` and its frame's
  size), so a make-pairs folder split into train/val/test by copying files, with `meta.json`
  copied into each, keeps every patch's place;
  (a meta.json that lists a patch without a position, as the synthetic pairs' does, makes it
  a frame of its own: each synthetic patch has its own crop and exposure);
- an AIM 2022 name `{scene}_{k}` with k < 48: the 6 x 8 row-major grid of equal patches;
- otherwise the image is a frame of its own.

A frame's context is computed from the patches of it that are present (`frame_summary`
treats the rest as unknown), once per frame, never per patch.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from revisp_tf.data.layout import AIM22_COLS, AIM22_ROWS, META_NAME, aim22_name
from revisp_tf.global_stage.context import FrameContext, frame_summary, with_capture
from revisp_tf.io.images import read_rgb


@dataclasses.dataclass(frozen=True)
class Placement:
    """A patch's frame (folder and scene), its top-left pixel in that frame and the frame's size."""

    frame: tuple[str, str]
    y: int
    x: int
    frame_shape: tuple[int, int]


def _meta_positions(folder: Path) -> dict[str, Placement | None]:
    """Placements by file stem from a meta.json in `folder` (None: listed without a position)."""
    path = folder / META_NAME
    if not path.is_file():
        return {}
    try:
        scenes = json.loads(path.read_text())["scenes"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: cannot read patch positions ({e}); expected the meta.json make-pairs writes") from None
    out = {}
    for name, scene in scenes.items():
        oy, ox = scene.get("canonical_offset", (0, 0))
        shape = tuple(scene["canonical_shape"]) if "canonical_shape" in scene else None
        for p in scene["patches"]:
            place = None if shape is None else Placement((str(folder), name), p["y"] - oy, p["x"] - ox, shape)
            out[f"{name}_{p['k']}"] = place
    return out


def placements(examples) -> list[Placement]:
    """The Placement of each example (see the module docstring for the sources)."""
    metas: dict[Path, dict] = {}
    out = []
    for ex in examples:
        folder, stem = Path(ex.rgb).parent, Path(ex.rgb).stem
        if folder not in metas:
            metas[folder] = _meta_positions(folder)
        h, w = ex.size if ex.size != (0, 0) else read_rgb(ex.rgb).shape[:2]
        key = aim22_name(stem)
        if metas[folder].get(stem) is not None:
            out.append(metas[folder][stem])
        elif key and stem not in metas[folder] and key[1] < AIM22_ROWS * AIM22_COLS:
            row, col = divmod(key[1], AIM22_COLS)
            out.append(Placement((str(folder), key[0]), row * h, col * w, (AIM22_ROWS * h, AIM22_COLS * w)))
        else:
            out.append(Placement((str(folder), stem), 0, 0, (h, w)))
    return out


def frame_contexts(examples, captures=None) -> list[tuple[FrameContext, int, int]]:
    """(frame summary, y, x) of each example (as stored): frames stitched from the patches present.

    `captures`: each example's `io.metadata.CaptureMetadata` (None where unrecorded; `captures`
    None: none at all), put in its frame's context (a frame's patches share one).
    """
    places = placements(examples)
    groups = defaultdict(list)
    for i, p in enumerate(places):
        groups[p.frame].append(i)
    summaries: dict[tuple[str, str], FrameContext] = {}
    offsets = {}
    for frame, idx in groups.items():
        canvas = np.zeros((*places[idx[0]].frame_shape, 3), np.float32)
        known = np.zeros(places[idx[0]].frame_shape, bool)
        for i in idx:
            rgb = read_rgb(examples[i].rgb)
            y, x = places[i].y, places[i].x
            h, w = min(rgb.shape[0], canvas.shape[0] - y), min(rgb.shape[1], canvas.shape[1] - x)
            canvas[y : y + h, x : x + w] = rgb[:h, :w]
            known[y : y + h, x : x + w] = True
            offsets[i] = (y, x)
        summaries[frame] = with_capture(frame_summary(canvas, known), None if captures is None else captures[idx[0]])
    return [(summaries[p.frame], *offsets[i]) for i, p in enumerate(places)]
