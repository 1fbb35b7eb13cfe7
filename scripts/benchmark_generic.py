"""Leave one camera out: the generic model's recipe trained without a camera, tested on that camera's renders.

    python scripts/benchmark_generic.py [--held-out all] [--seeds 0,1] \
        [--isps libraw,darktable,rt-pop2lab,rt-local,infinite-isp] [--work-dir runs/benchmark_fidelity]
    python scripts/benchmark_generic.py --table     # the report's Markdown tables (docs/benchmarks.md)

The protocol for any shipped model. For each camera of train_generic.CAMERAS in turn (the
Huawei P9, never trained on, and each camera the shipped model is trained on), the recipe
(`train_generic.train_generic`, generic.yaml, every seed of --seeds) is trained on the other
shippable cameras' renders plus the synthetic pairs, and every frame of the held-out camera is
rendered by each ISP of --isps and scored (PSNR over its patches; a camera's figure is the mean
over its frames). Holding out the P9 trains on exactly the shipped model's data.

Methods:
  upi                 Brooks et al.'s default camera.
  global fit          the global inverse fitted in closed form on the same training renders
                      (frame-blind: the training frames' gains baked into the curves).
  global fit+prior    the closed-form stage of the generic model alone: curves fitted on RAW
                      balanced by the recorded gains, the test frame's gains from the frame-gain
                      prior of generic.yaml (`model.frame_prior`; what the model does with an
                      input that records no gains).
  global fit+metadata the same with the test render's recorded gains.
  generic             the trained model, no metadata (`eval --metadata none`): the default case.
  generic+metadata    the trained model given the test render's recorded gains.
  oracle              the global inverse fitted on the test frame itself (--oracle).
Finished runs are reused when their config matches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_fidelity as bf  # noqa: E402
import benchmark_frame_gains as bfg  # noqa: E402
import train_generic as tg  # noqa: E402

from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.io.atomic import atomic_write  # noqa: E402
from revisp_tf.isp.sensor import PROJECT_10BIT  # noqa: E402

EVAL_ISPS = ("libraw", "darktable", "rt-pop2lab", "rt-local", "infinite-isp")
CLOSED_FORM = {"upi": "upi", "global fit": "fitted", "global fit+prior": "fitted+prior",
               "global fit+metadata": "fitted+metadata", "oracle": "oracle"}
METHODS = ("upi", "global fit", "global fit+prior", "generic", "global fit+metadata", "generic+metadata", "oracle")


def run_dir(work: Path, held_out: str, seed: int) -> Path:
    return work / "generic" / "runs" / f"without-{held_out}-s{seed}"


def held_out_scores(held_out: str, args, seeds) -> dict:
    """isp -> frame -> method -> PSNR (trained methods: mean over seeds, with per-seed values)."""
    cameras = [c for c in tg.TRAINING_CAMERAS if c != held_out]
    raw_dir = args.raw_dir.resolve()
    models = {}
    for seed in seeds:
        t0 = time.perf_counter()
        models[seed], secs, reused = tg.train_generic(run_dir(args.work_dir, held_out, seed), cameras, args.work_dir, raw_dir, seed, args.set)
        print(f"without {held_out}, seed {seed}: {secs / 60:.1f} min training{' (reused)' if reused else ''}, "
              f"{(time.perf_counter() - t0) / 60:.1f} min in all", flush=True)
    train_dir = args.work_dir / "generic" / "train" / ("+".join(cameras) + f"-s{seeds[0]}")
    frame_prior = tg.experiment(train_dir, train_dir, seeds[0], args.set).model.frame_prior
    fits = bfg.closed_form_fits(scan_pairs(train_dir, sensor=PROJECT_10BIT), frame_prior)
    # A frame-blind model (capture_metadata off) ignores recorded gains: one score.
    takes_gains = json.loads((models[seeds[0]].parent / "global_fit.json").read_text())["capture_metadata"]
    out = {}
    for isp in args.isps:
        dirs = bf.make_frames(isp, raw_dir, args.work_dir / "pairs", tg.PATCH, names=tg.CAMERAS[held_out].frames)
        for frame in tg.CAMERAS[held_out].frames:
            test_ex = scan_pairs(dirs[frame], sensor=PROJECT_10BIT)
            closed = bfg.untrained(None, test_ex, fits, oracles=args.oracle)
            scores = {name: closed[key]["psnr"] for name, key in CLOSED_FORM.items() if key in closed}
            for name, md in (("generic", False), ("generic+metadata", True))[: 2 if takes_gains else 1]:
                per_seed = [bf.score_model(models[s], test_ex, with_metadata=md)["psnr"] for s in seeds]
                scores[name] = float(np.mean(per_seed))
                scores[f"{name} per seed"] = per_seed
            out.setdefault(isp, {})[frame] = scores
            print(f"  {held_out} {isp} {frame}: " + ", ".join(f"{m} {scores[m]:.2f}" for m in METHODS if m in scores), flush=True)
    return out


def camera_means(report: dict) -> dict:
    """isp -> held-out camera -> method -> mean PSNR over the camera's frames."""
    out = {}
    for camera, by_isp in report["held_out"].items():
        for isp, frames in by_isp.items():
            means = {m: float(np.mean([f[m] for f in frames.values()])) for m in METHODS if all(m in f for f in frames.values())}
            for m in [m for m in means if f"{m} per seed" in next(iter(frames.values()))]:
                means[f"{m} per seed"] = np.mean([f[f"{m} per seed"] for f in frames.values()], axis=0).tolist()
            out.setdefault(isp, {})[camera] = means
    return out


def _cell(means: dict, method: str) -> str:
    """Mean PSNR, and for a trained method half the range of its seeds' means."""
    if method not in means:
        return "-"
    seeds = means.get(f"{method} per seed")
    return bf._f(means[method]) + (f" ±{np.ptp(seeds) / 2:.2f}" if seeds and len(seeds) > 1 else "")


def markdown(report: dict) -> str:
    means = camera_means(report)
    lines = []
    for isp, cams in means.items():
        lines += [f"### {isp}", "", "| held-out camera (frames) | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
        for camera, m in cams.items():
            n = len(report["held_out"][camera][isp])
            lines.append(f"| {camera} ({n}) | " + " | ".join(_cell(m, k) for k in METHODS) + " |")
        overall = [bf._f(float(np.mean([m[k] for m in cams.values()]))) if all(k in m for m in cams.values()) else "-" for k in METHODS]
        lines += ["| **mean over cameras** | " + " | ".join(overall) + " |", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--held-out", default="all", help=f"all, or some of {', '.join(tg.CAMERAS)}")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--isps", default=",".join(EVAL_ISPS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value of generic.yaml")
    p.add_argument("--raw-dir", type=Path, default=bf.make_real_pairs.RAW_DIR)
    p.add_argument("--work-dir", type=Path, default=bf.REPO / "runs" / "benchmark_fidelity")
    p.add_argument("--out", type=Path, default=None, help="report JSON [default: WORK_DIR/generic/loco.json]")
    p.add_argument("--oracle", action="store_true", help="also the oracle (the global inverse fitted on the test frame)")
    p.add_argument("--table", action="store_true", help="print the report's Markdown tables and exit")
    args = p.parse_args(argv)
    out_path = args.out or args.work_dir / "generic" / "loco.json"
    if args.table:
        print(markdown(json.loads(out_path.read_text())))
        return 0
    if not args.raw_dir.is_dir():
        print(f"{args.raw_dir}: no real RAW files (../shared/realdata/raw); nothing to benchmark", file=sys.stderr)
        return 1
    args.isps = [s for s in args.isps.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",")]
    held = ["huawei-p9", *tg.TRAINING_CAMERAS] if args.held_out == "all" else args.held_out.split(",")
    t0 = time.perf_counter()
    report = json.loads(out_path.read_text()) if out_path.is_file() else {"held_out": {}}
    for camera in held:
        report["held_out"][camera] = held_out_scores(camera, args, seeds)
        with atomic_write(out_path) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
    report["settings"] = {"seeds": seeds, "isps": args.isps, "set": args.set, "seconds": round(time.perf_counter() - t0)}
    with atomic_write(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    print(f"report: {out_path} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
