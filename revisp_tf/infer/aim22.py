"""The AIM 2022 patch grid: each frame split into `AIM22_ROWS` x `AIM22_COLS` patches `{scene}_{k}`, `k = 8*row + col`.

(S7: 504 px RGB / 252 px packed RAW patches of a 3024x4032 frame.) `revisp-tf infer --stitch`
rebuilds the frames before inference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from revisp_tf.data.layout import AIM22_COLS, AIM22_ROWS, patch_key
from revisp_tf.io.images import read_raw_npy, read_rgb


def group_patch_files(paths: Iterable, rows: int = AIM22_ROWS, cols: int = AIM22_COLS) -> dict[str, list[Path]]:
    """Groups `{scene}_{k}` files by scene, each list ordered by k; every scene must have all rows*cols patches."""
    scenes: dict[str, dict[int, Path]] = {}
    for p in map(Path, paths):
        scene, k = patch_key(p)
        if k in scenes.setdefault(scene, {}):
            raise ValueError(f"{p}: patch {k} of scene {scene} given twice ({scenes[scene][k]})")
        scenes[scene][k] = p
    grouped = {}
    for scene, found in scenes.items():
        missing = sorted(set(range(rows * cols)) - set(found))
        extra = sorted(set(found) - set(range(rows * cols)))
        if missing or extra:
            raise ValueError(
                f"scene {scene}: expected patches {scene}_0 .. {scene}_{rows * cols - 1} ({rows}x{cols} grid), "
                f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected {extra[:8]}"
            )
        grouped[scene] = [found[k] for k in range(rows * cols)]
    return grouped


def _load_patch(p) -> np.ndarray:
    if isinstance(p, (str, Path)):
        return read_raw_npy(p) if Path(p).suffix == ".npy" else read_rgb(p)
    return np.asarray(p)


def stitch_patches(patches: Sequence, rows: int = AIM22_ROWS, cols: int = AIM22_COLS) -> np.ndarray:
    """Rebuilds a frame from its rows*cols patches (arrays or image / .npy paths) given in order k = cols*row + col."""
    if len(patches) != rows * cols:
        raise ValueError(f"stitch_patches: expected {rows * cols} patches ({rows}x{cols} grid), got {len(patches)}")
    arrays = [_load_patch(p) for p in patches]
    first = arrays[0]
    for k, a in enumerate(arrays):
        if a.shape != first.shape or a.dtype != first.dtype:
            name = patches[k] if isinstance(patches[k], (str, Path)) else f"patch {k}"
            raise ValueError(f"{name}: shape {a.shape} {a.dtype}; expected {first.shape} {first.dtype} like patch 0")
    return np.concatenate([np.concatenate(arrays[r * cols : (r + 1) * cols], axis=1) for r in range(rows)], axis=0)


def unstitch(frame, rows: int = AIM22_ROWS, cols: int = AIM22_COLS) -> list[np.ndarray]:
    """Splits a frame into its rows*cols equal patches, in order k = cols*row + col."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    if h % rows or w % cols:
        raise ValueError(f"unstitch: frame {h}x{w} does not split into a {rows}x{cols} grid of equal patches")
    ph, pw = h // rows, w // cols
    return [frame[r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] for r in range(rows) for c in range(cols)]
