"""global_stage.placement: each patch's place in its frame survives a split of a make-pairs folder; AIM names tile 6 x 8."""

import json
import shutil

import numpy as np

from revisp_tf.data.scan import Example
from revisp_tf.global_stage.context import frame_summary
from revisp_tf.global_stage.placement import frame_contexts, placements
from revisp_tf.io.images import write_rgb


def _write_frame(folder, frame, patch):
    """A make-pairs-like folder: patches of `frame` on a grid, meta.json with their positions."""
    folder.mkdir(parents=True)
    patches, k = [], 0
    for y in range(0, frame.shape[0] - patch + 1, patch):
        for x in range(0, frame.shape[1] - patch + 1, patch):
            write_rgb(folder / f"f_{k}.png", frame[y : y + patch, x : x + patch])
            patches.append({"k": k, "row": y // patch, "col": x // patch, "y": y + 1, "x": x + 1})
            k += 1
    meta = {"scenes": {"f": {"canonical_offset": [1, 1], "canonical_shape": list(frame.shape[:2]), "patches": patches}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return k


def test_a_split_folder_keeps_each_patchs_place(tmp_path):
    rng = np.random.default_rng(0)
    frame = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    n = _write_frame(tmp_path / "all", frame, 32)
    split = tmp_path / "test"
    split.mkdir()
    for k in (1, 4):  # a user copies some patches and the meta.json
        shutil.copy(tmp_path / "all" / f"f_{k}.png", split)
    shutil.copy(tmp_path / "all" / "meta.json", split)
    ex = [Example(split / f"f_{k}.png", "f", (32, 32)) for k in (1, 4)]
    assert [(p.y, p.x, p.frame_shape) for p in placements(ex)] == [(0, 32, (64, 96)), (32, 32, (64, 96))]
    # The whole folder's context is that of the frame itself.
    full = [Example(tmp_path / "all" / f"f_{k}.png", "f", (32, 32)) for k in range(n)]
    summary, y, x = frame_contexts(full)[4]
    assert (y, x) == (32, 32)
    assert np.allclose(summary.grid, frame_summary(frame.astype(np.float32) / 255).grid, atol=1e-6)


def test_aim22_names_tile_a_6_by_8_grid_and_others_are_frames_of_their_own(tmp_path):
    for name in ("7_0", "7_13", "photo"):
        write_rgb(tmp_path / f"{name}.png", np.zeros((16, 24, 3), np.uint8))
    ex = [Example(tmp_path / f"{n}.png", "s", (16, 24)) for n in ("7_0", "7_13", "photo")]
    got = [(p.frame[1], p.y, p.x, p.frame_shape) for p in placements(ex)]
    assert got == [("7", 0, 0, (96, 192)), ("7", 16, 120, (96, 192)), ("photo", 0, 0, (16, 24))]
