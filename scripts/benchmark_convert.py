"""Throughput of `revisp-tf convert` (Apache Beam's DirectRunner) against `revisp-tf infer`, on the same 12 MP frames.

    python scripts/benchmark_convert.py                        # about 15 min on 2 busy cores
    python scripts/benchmark_convert.py --frames 6 --identity-frames 24 --repeats 3

Needs the beam extra (`pip install -e ".[beam]"`). Frames: the four AIM 2022 S7 scenes of
../shared/realdata/aim22_s7_rgb, each stitched from its 48 patches to 3024 x 4032 (12.2 MP) and
written as JPEG quality 95, cycled to the count asked for; a generated frame (smooth colours, a
blown-out band) when that folder is absent, and the report says so.

Every row is the command a user runs, in a fresh process, `--format npy`, default tiling:
  infer               `revisp-tf infer FRAMES --out DIR` (one process)
  convert, 1 worker   `revisp-tf convert FRAMES --out DIR -- --direct_num_workers 1`
  convert, 2 workers  the same with 2 worker processes
with the shipped model (dual net with a global stage) on --frames frames, then with an identity
model (the mosaic of the input: reading, tiling and writing, no network) on --identity-frames.
Per row: the wall time end to end (Python start, TensorFlow import, model load, Beam's workers
included); the steady cost per image, (last output's mtime - first output's) / (frames - workers),
which leaves the start-up out (each worker's first output ends its start); and the fixed cost, wall - frames x steady cost. On the identity
model, convert's steady and fixed costs minus infer's are Beam's own. Each figure is the median
of --repeats runs, the rows of a repeat one after another so that they share the machine's load.
convert's outputs are checked byte-equal to infer's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts")]  # the sibling benchmark's generated frame
S7 = REPO.parent / "shared" / "realdata" / "aim22_s7_rgb"
S7_SCENES = ("6", "10", "48", "78")
ROWS = (("infer", None), ("convert, 1 worker", 1), ("convert, 2 workers", 2))


def write_frames(folder: Path, count: int) -> str:
    """`count` 12 MP JPEG frames in `folder`; returns where they come from."""
    from revisp_tf.infer.aim22 import stitch_patches
    from revisp_tf.io.images import write_rgb

    if S7.is_dir():
        scenes = [stitch_patches([S7 / f"{s}_{k}.jpg" for k in range(48)]) for s in S7_SCENES]
        source = f"the 4 S7 scenes of {S7} stitched to 3024x4032"
    else:
        from benchmark_inference_memory import frame

        scenes = [frame(3024, 4032)]
        source = f"a generated 3024x4032 frame ({S7} is absent)"
    for k in range(count):
        write_rgb(folder / f"frame{k:02d}.jpg", scenes[k % len(scenes)], jpeg_quality=95)
    return source + (f", cycled to {count} frames" if count > len(scenes) else "")


def identity_model(path: Path) -> None:
    """RGB -> its own mosaic, packed: a reverse-ISP model with no network."""
    import keras

    from revisp_tf.models.layers import Mosaic

    rgb = keras.Input((None, None, 3), name="rgb")
    keras.Model(rgb, Mosaic(name="bayer")(rgb), name="identity").save(path)


def run(row: str, workers: int | None, frames: list[Path], model: Path | None, out: Path) -> tuple[float, float]:
    """(wall seconds, steady seconds per image) of one command."""
    command = [sys.executable, "-m", "revisp_tf.cli", "infer" if workers is None else "convert", *map(str, frames),
               "--out", str(out), *(["--model", str(model)] if model else [])]
    if workers is not None:
        command += ["--", "--direct_num_workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{row} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    written = sorted(p.stat().st_mtime for p in out.glob("*.npy"))
    # From the first output to the last: each of the k workers' first output starts its steady run.
    return seconds, (written[-1] - written[0]) / (len(written) - (workers or 1))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.npy"))}


def timed_rows(frames: list[Path], model: Path | None, repeats: int, work: Path) -> dict[str, tuple[float, float]]:
    """Median (wall seconds, steady seconds per image) of each row; stops if convert's outputs differ from infer's."""
    times: dict[str, list[tuple[float, float]]] = {row: [] for row, _ in ROWS}
    for r in range(repeats):
        outputs = {}
        for row, workers in ROWS:
            out = work / f"out-{r}-{workers}"
            times[row].append(run(row, workers, frames, model, out))
            outputs[row] = digests(out)
            shutil.rmtree(out)
            print(f"  repeat {r + 1}, {row}: {times[row][-1][0]:.1f} s, {times[row][-1][1]:.2f} s per image", flush=True)
        if any(d != outputs["infer"] or len(d) != len(frames) for d in outputs.values()):
            raise SystemExit("convert's outputs differ from infer's")
    return {row: (statistics.median(w for w, _ in t), statistics.median(i for _, i in t)) for row, t in times.items()}


def table(title: str, rows: dict[str, tuple[float, float]], n: int) -> dict[str, tuple[float, float]]:
    """Prints a row per command; returns (steady s per image, fixed s) of each."""
    print(f"\n{title}, {n} frames\n| row | wall s | images/s end to end | steady s per image | steady images/s | fixed s |")
    print("|---|---|---|---|---|---|")
    costs = {}
    for row, (wall, per_image) in rows.items():
        costs[row] = (per_image, wall - n * per_image)
        print(f"| {row} | {wall:.1f} | {n / wall:.3f} | {per_image:.2f} | {1 / per_image:.3f} | {costs[row][1]:.1f} |")
    return costs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=4, help="12 MP frames per run with the shipped model (at least 3)")
    p.add_argument("--identity-frames", type=int, default=16, help="12 MP frames per run with the identity model")
    p.add_argument("--repeats", type=int, default=2, help="runs of each row; the median is reported")
    args = p.parse_args()
    if min(args.frames, args.identity_frames) < 3:
        p.error("--frames, --identity-frames: at least 3 (the steady cost is the time between the first and last output)")
    with tempfile.TemporaryDirectory(prefix="benchmark-convert-") as tmp:
        work = Path(tmp)
        (work / "frames").mkdir()
        source = write_frames(work / "frames", max(args.frames, args.identity_frames))
        frames = sorted((work / "frames").glob("*.jpg"))
        identity_model(work / "identity.keras")
        print(f"frames: {source}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        print("the shipped model:", flush=True)
        shipped = timed_rows(frames[: args.frames], None, args.repeats, work)
        print("the identity model:", flush=True)
        identity = timed_rows(frames[: args.identity_frames], work / "identity.keras", args.repeats, work)
    print(f"\n12.2 MP JPEG frames, --format npy, {len(os.sched_getaffinity(0))} cores, medians of {args.repeats} runs; "
          f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table("the shipped model", shipped, args.frames)
    costs = table("the identity model", identity, args.identity_frames)
    for row, _ in ROWS[1:]:
        print(f"Beam's own cost, {row}: {costs[row][0] - costs['infer'][0]:+.2f} s per image, "
              f"{costs[row][1] - costs['infer'][1]:+.1f} s per run (identity model, against infer)")
    print("convert's outputs: byte-equal to infer's in every run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
