"""The shipped generic model's recipe: real renders of every RAW file whose licence allows it, plus synthetic pairs.

    REVISP_INFINITE_ISP=../shared/isps/infinite-isp python scripts/train_generic.py --run-dir runs/generic \
        [--seed 0] [--leave-out CAMERA] [--work-dir runs/benchmark_fidelity] [--raw-dir ../shared/realdata/raw]
    python scripts/ship_model.py runs/generic --loco runs/benchmark_fidelity/generic/loco.json

Data (`assemble`):
  real       each frame of each camera of CAMERAS whose licence allows shipping a model trained
             on it (Infinite-ISP's sensor, Canon 550D, Nokia N900; never the Huawei P9 or IMX135),
             rendered by each ISP of TRAIN_ISPS (LibRaw, darktable, four RawTherapee profiles,
             Infinite-ISP with its own 3A), 256 px patches; make-pairs' meta.json records the
             gains each render applied;
  synthetic  SYNTHETIC_COUNT pairs of `make-pairs --synthetic` (a random UPI camera per source
             photo, a random exposure per patch; each patch records its gains), and VAL_COUNT
             more of another seed for validation.
The training pairs go into one folder of links (scenes renamed `{source}-{scene}`), and
training/configs/generic.yaml trains on it: the global stage fitted in closed form on all of it
(RAW balanced by the recorded gains), the frame-gain prior fitted on every frame's recorded
gains, then the dual nets' corrections. A camera the model never saw is served by the prior
when its input records no gains.

`--leave-out CAMERA` drops that camera's frames (leave one camera out: benchmark_generic.py).
Renders are cached under WORK_DIR/pairs (shared with benchmark_fidelity). The run directory
gets recipe.json: the data list with licences and counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_fidelity as bf  # noqa: E402

from revisp_tf.data.layout import META_NAME  # noqa: E402
from revisp_tf.data.synthetic import make_synthetic_pairs  # noqa: E402
from revisp_tf.io.atomic import atomic_write  # noqa: E402
from revisp_tf.realdata import realdata_dir  # noqa: E402
from revisp_tf.train import config as config_lib  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "training" / "configs" / "generic.yaml"


@dataclasses.dataclass(frozen=True)
class Camera:
    frames: tuple[str, ...]  # benchmark_fidelity.FRAMES names
    licence: str
    shippable: bool  # may a shipped model be trained on its frames


# Licences from ../shared/realdata/README.md.
CAMERAS = {
    "infinite-isp": Camera(("Indoor1", "Outdoor1", "Outdoor2", "Outdoor4"), "Apache-2.0 (10x-Engineers Infinite-ISP reference model)", True),
    "canon-550d": Camera(("550D",), "MIT (syoyo/tinydng test sample)", True),
    "nokia-n900": Camera(("N900",), "Halide licence, MIT-style (halide/Halide apps/images)", True),
    "huawei-p9": Camera(("P9-19", "P9-242"), "no licence in its source: evaluation only", False),
}
TRAINING_CAMERAS = tuple(name for name, cam in CAMERAS.items() if cam.shippable)
TRAIN_ISPS = ("libraw", "darktable", "rt-pop2lab", "rt-local", "rt-pop1", "rt-film-low", "infinite-isp")
PATCH = 256
SYNTHETIC_COUNT, SYNTHETIC_PATCH, VAL_COUNT = 384, 128, 48
SYNTHETIC_LICENCE = "generated from scikit-image's sample photos (BSD-3-Clause and their own permissive terms)"


def synthetic_pairs(out: Path, count: int, seed: int) -> Path:
    """`make-pairs --synthetic` pairs (reused when meta.json says they were made with these values)."""
    meta = out / META_NAME
    made = json.loads(meta.read_text()) if meta.is_file() else {}
    if not ((made.get("seed"), made.get("patch")) == (seed, SYNTHETIC_PATCH) and _count(out) == count):
        shutil.rmtree(out, ignore_errors=True)
        make_synthetic_pairs(out, count=count, seed=seed, patch=SYNTHETIC_PATCH)
    return out


def _count(folder: Path) -> int:
    scenes = json.loads((folder / META_NAME).read_text())["scenes"]
    return sum(len(s["patches"]) for s in scenes.values())


def linked_folder(sources: dict[str, Path], out: Path) -> Path:
    """One folder of pairs: links to each source folder's files, scene `s` renamed `{prefix}-{s}`, meta.json scenes merged."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scenes = {}
    for prefix, folder in sources.items():
        meta = json.loads((folder / META_NAME).read_text())
        for name, scene in meta["scenes"].items():
            if not scene.get("patches"):
                continue  # a frame too small for a patch
            scenes[f"{prefix}-{name}"] = scene | {"pairs_from": str(folder)}
        for f in folder.iterdir():
            if f.name not in (META_NAME, "frame.json") and not f.name.startswith("."):
                (out / f"{prefix}-{f.name}").symlink_to(f.resolve())
    with atomic_write(out / META_NAME) as tmp:
        tmp.write_text(json.dumps({"layout": "linked pair folders (scripts/train_generic.py)", "scenes": scenes}, indent=1))
    return out


def assemble(cameras, work: Path, raw_dir: Path, seed: int, tag: str) -> tuple[Path, Path, dict]:
    """(train folder, val folder, data list) of the real renders of `cameras` plus the synthetic pairs."""
    sources, renders = {}, []
    frames = [f for c in cameras for f in CAMERAS[c].frames]
    for isp in TRAIN_ISPS:
        dirs = bf.make_frames(isp, raw_dir, work / "pairs", PATCH, names=frames)
        for camera in cameras:
            for frame in CAMERAS[camera].frames:
                sources[f"{isp}-{frame}"] = dirs[frame]
                renders.append({"camera": camera, "frame": frame, "file": bf.FRAMES[frame], "isp": isp,
                                "settings": bf.ISPS[isp], "patches": _count(dirs[frame]), "licence": CAMERAS[camera].licence})
    sources["synthetic"] = synthetic_pairs(work / "synthetic" / f"train-s{seed}", SYNTHETIC_COUNT, seed)
    val = synthetic_pairs(work / "synthetic" / f"val-s{seed + 1000}", VAL_COUNT, seed + 1000)
    train = linked_folder(sources, work / "generic" / "train" / tag)
    data = {
        "real": renders,
        "synthetic": {"command": f"revisp-tf make-pairs --synthetic --count {SYNTHETIC_COUNT} --patch {SYNTHETIC_PATCH} --seed {seed}",
                      "licence": SYNTHETIC_LICENCE},
        "validation": f"revisp-tf make-pairs --synthetic --count {VAL_COUNT} --patch {SYNTHETIC_PATCH} --seed {seed + 1000}",
        "patch": PATCH,
    }
    return train, val, data


def experiment(train_dir: Path, val_dir: Path, seed: int, overrides=()) -> config_lib.ExperimentConfig:
    """generic.yaml on the assembled folders."""
    values = yaml.safe_load(CONFIG.read_text())
    return config_lib.parse_config(
        values, [f"data.train_dir={train_dir}", f"data.val_dir={val_dir}", f"runtime.seed={seed}", *overrides]
    )


def train_generic(run_dir: Path, cameras, work: Path, raw_dir: Path, seed: int, overrides=()) -> tuple[Path, float, bool]:
    """Makes the data of `cameras` and trains generic.yaml on it into `run_dir` (reused when finished with the same config)."""
    tag = "+".join(cameras) + f"-s{seed}"
    train_dir, val_dir, data = assemble(cameras, work, raw_dir, seed, tag)
    cfg = experiment(train_dir, val_dir, seed, overrides)
    model_path, seconds, reused = bf.train_run(cfg, run_dir)
    recipe = {"cameras": list(cameras), "config": "training/configs/generic.yaml", "seed": seed,
              "overrides": list(overrides), "data": data, "train_seconds": round(seconds, 1)}
    with atomic_write(run_dir / "recipe.json") as tmp:
        tmp.write_text(json.dumps(recipe, indent=1))
    return model_path, seconds, reused


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--leave-out", choices=CAMERAS, default=None, help="train without this camera's frames")
    ap.add_argument("--work-dir", type=Path, default=Path("runs/benchmark_fidelity"))
    ap.add_argument("--raw-dir", type=Path, default=realdata_dir() / "raw")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value of generic.yaml")
    args = ap.parse_args(argv)
    if not args.raw_dir.is_dir():
        print(f"{args.raw_dir}: no such folder; expected ../shared/realdata/raw (set REVISP_REALDATA)", file=sys.stderr)
        return 1
    cameras = [c for c in TRAINING_CAMERAS if c != args.leave_out]
    t0 = time.perf_counter()
    model, seconds, reused = train_generic(args.run_dir, cameras, args.work_dir, args.raw_dir.resolve(), args.seed, args.set)
    print(f"{model}: trained on {', '.join(cameras)} + synthetic, "
          f"{'reused' if reused else f'{seconds / 60:.1f} min training'}, {(time.perf_counter() - t0) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
