"""Each frame's white balance and exposure: leave one frame out, with and without the recorded gains.

    python scripts/benchmark_frame_gains.py [--isps infinite-isp,libraw,darktable,rt-pop2lab,rt-local] \
        [--trained dual+global] [--seeds 0,1] [--steps 150] [--work-dir runs/benchmark_fidelity]
    python scripts/benchmark_frame_gains.py --table     # the report's Markdown tables (docs/benchmarks.md)

Splits: the four frames of the Infinite-ISP sensor (Indoor1, Outdoor1, Outdoor2, Outdoor4), each
in turn the test frame with the other three for training, and the Huawei P9 pair both ways
(`benchmark_fidelity.FRAMES`). Each frame is rendered by each ISP (`benchmark_fidelity.ISPS`;
Infinite-ISP with its own 3A, so its white balance and exposure change from frame to frame) and
make-pairs records the gains the render applied (meta.json "capture").

Methods (PSNR on every 256 px patch of the test frame, mean):
  upi                 Brooks et al.'s default camera.
  fitted              the global inverse fitted in closed form on the training frames' RAW.
  fitted+metadata     the same fitted on their balanced RAW (RAW x recorded white balance x
                      exposure gain), given the test frame's recorded gains.
  fitted+prior        that balanced fit with the test frame's gains from the frame-gain prior
                      (`global_stage.prior`, fitted on the training frames' recorded gains).
  oracle              fitted on the test frame itself.
  fitted+test gains   the `fitted` curves with the four per-channel gains that suit the test
                      frame best (a diagnostic: what a correct per-frame gain is worth).
  M+metadata, M       each trained method M (camera.yaml, which takes the recorded gains when
                      every training pair has them) scored with the test frame's recorded gains
                      (`eval`'s default) and without them (`eval --metadata none`: the prior).
Training budget as in `benchmark_fidelity` (--steps Adam steps of --batch crops, bayer L2, width 8,
depth 3), each seed of --seeds. Finished runs are reused when their config matches.
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

from revisp_tf.data.layout import META_NAME  # noqa: E402
from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.global_stage.fit import balanced_bayer, fit_global_inverse  # noqa: E402
from revisp_tf.global_stage.placement import frame_contexts  # noqa: E402
from revisp_tf.global_stage.prior import fit_frame_prior, mean_frame_prior  # noqa: E402
from revisp_tf.io.atomic import atomic_write  # noqa: E402
from revisp_tf.io.images import read_raw_npy, read_rgb  # noqa: E402
from revisp_tf.io.metadata import patch_captures  # noqa: E402
from revisp_tf.isp.bayer import mosaic  # noqa: E402
from revisp_tf.isp.sensor import PROJECT_10BIT  # noqa: E402
from revisp_tf.scoring import baselines, evaluate  # noqa: E402

SENSOR_FRAMES = ("Indoor1", "Outdoor1", "Outdoor2", "Outdoor4")
SPLITS = [(tuple(f for f in SENSOR_FRAMES if f != test), test) for test in SENSOR_FRAMES] + [
    (("P9-19",), "P9-242"), (("P9-242",), "P9-19")]
UNTRAINED = ("upi", "fitted", "fitted+metadata", "fitted+prior", "oracle", bf.GAIN_ORACLE)


def merged_folder(dirs: list[Path], out: Path) -> Path:
    """One folder of pairs holding the given frames' folders (links to their files, their meta.json scenes merged)."""
    if len(dirs) == 1:
        return dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    meta = None
    for d in dirs:
        m = json.loads((d / META_NAME).read_text())
        meta = m if meta is None else {**meta, "scenes": {**meta["scenes"], **m["scenes"]}}
        for f in d.iterdir():
            if f.name not in (META_NAME, "frame.json") and not (out / f.name).exists():
                (out / f.name).symlink_to(f.resolve())
    with atomic_write(out / META_NAME) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return out


def _read(examples):
    return [read_rgb(ex.rgb) for ex in examples], [PROJECT_10BIT.to_model_units(read_raw_npy(ex.raw)) for ex in examples]


def closed_form_fits(train_ex, frame_prior: str = "ridge") -> dict:
    """The closed-form stages fitted on the training pairs: "fitted" (frame-blind), and where every
    pair records its gains, "balanced" (curves on balanced RAW) and "prior" (the frame-gain prior,
    ridge or mean as `model.frame_prior`)."""
    fits = {"fitted": baselines.fit_baseline(train_ex, PROJECT_10BIT)}
    caps = patch_captures([e.rgb for e in train_ex])
    if any(c is None for c in caps):
        return fits  # a render that records no gains: no metadata rows
    rgbs, bayers = _read(train_ex)
    fits["balanced"] = fit_global_inverse(rgbs, [balanced_bayer(b, c.wb, c.exposure_gain) for b, c in zip(bayers, caps)])
    ctx = {id(c): c for c, _, _ in frame_contexts(train_ex, caps)}.values()
    fits["prior"] = (fit_frame_prior if frame_prior == "ridge" else mean_frame_prior)([c.stats for c in ctx], [c.gains for c in ctx])
    return fits


def untrained(train_ex, test_ex, fits: dict | None = None, oracles: bool = True) -> dict:
    """Every closed-form method's scores on the test frame (`fits`: closed_form_fits(train_ex), when
    already made; `oracles`: also the fits that see the test frame)."""
    fits = fits or closed_form_fits(train_ex)
    out = {}
    methods = (("upi", None), ("fitted", fits["fitted"])) + ((("oracle", baselines.fit_baseline(test_ex, PROJECT_10BIT)),) if oracles else ())
    for name, fit in methods:
        base = "upi" if name == "upi" else "fitted"
        rep = evaluate.evaluate_pairs(test_ex, PROJECT_10BIT, None, (base,), progress=False, fitted=fit)
        out[name] = bf._summary(rep[base])
    if oracles:
        gains = bf._best_gains(fits["fitted"], test_ex)
        predict = lambda rgb: np.clip(fits["fitted"].predict(rgb) * gains, 0.0, 1.0)  # noqa: E731
        out[bf.GAIN_ORACLE] = bf._summary(evaluate.evaluate_pairs(test_ex, PROJECT_10BIT, predict, (), progress=False)["model"])
    test_caps = patch_captures([e.rgb for e in test_ex])
    if "balanced" not in fits or any(c is None for c in test_caps):
        return out
    balanced, prior = fits["balanced"], fits["prior"]
    test_ctx = frame_contexts(test_ex, test_caps)[0][0]
    for name, log_gains in (("fitted+metadata", test_ctx.gains), ("fitted+prior", prior.predict(test_ctx.stats))):
        # The balanced curves' RAW times the frame's gain for each sample's colour, clipped.
        predict = lambda rgb, g=np.exp(log_gains): np.clip(balanced_bayer(mosaic(balanced.demosaiced(rgb)), g), 0.0, 1.0)  # noqa: E731
        out[name] = bf._summary(evaluate.evaluate_pairs(test_ex, PROJECT_10BIT, predict, (), progress=False)["model"])
        out[name]["log_gains"] = np.asarray(log_gains).tolist()
    return out


def run_split(isp: str, train: tuple, test: str, dirs: dict, args, methods, seeds) -> dict:
    tag = "+".join(train) + "-to-" + test
    train_dir = merged_folder([dirs[f] for f in train], args.work_dir / "lofo" / "train" / isp / tag)
    train_ex, test_ex = scan_pairs(train_dir, sensor=PROJECT_10BIT), scan_pairs(dirs[test], sensor=PROJECT_10BIT)
    out = untrained(train_ex, test_ex)
    for method in methods:
        runs = []
        for seed in seeds:
            cfg = bf.experiment(method, seed, train_dir, args)
            run_dir = args.work_dir / "lofo" / "runs" / isp / tag / f"{method}-s{seed}"
            model_path, secs, reused = bf.train_run(cfg, run_dir)
            with_md, without = bf.score_model(model_path, test_ex), bf.score_model(model_path, test_ex, with_metadata=False)
            runs.append({"seed": seed, "train_s": round(secs, 1), "reused": reused, "metadata": with_md, "prior": without})
            print(f"  {isp} {tag} {method} seed {seed}: {with_md['psnr']:.2f} dB with metadata, {without['psnr']:.2f} without"
                  f" ({secs:.0f} s{', reused' if reused else ''})", flush=True)
        for key, name in (("metadata", f"{method}+metadata"), ("prior", method)):
            out[name] = {f: float(np.mean([r[key][f] for r in runs])) for f in bf.FIELDS} | {
                "psnr_spread": float(np.ptp([r[key]["psnr"] for r in runs])), "per_seed": [r[key]["psnr"] for r in runs]}
        out[f"{method} runs"] = runs
    return out


def markdown(report: dict) -> str:
    lines = []
    for isp, splits in report["matrix"].items():
        methods = [m for m in dict.fromkeys(m for s in splits.values() for m in s) if not m.endswith(" runs")]
        lines += [f"### {isp}", "", "| train → test | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for split, s in splits.items():
            cells = ["-" if m not in s else bf._f(s[m]["psnr"]) + (f" ±{s[m]['psnr_spread'] / 2:.2f}" if "psnr_spread" in s[m] else "")
                     for m in methods]
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
        for label, keep in (("mean, Infinite-ISP frames", lambda k: "P9" not in k), ("mean, all", lambda k: True)):
            rows = {k: s for k, s in splits.items() if keep(k)}
            means = [bf._f(float(np.mean([s[m]["psnr"] for s in rows.values()]))) if rows and all(m in s for s in rows.values())
                     else "-" for m in methods]
            lines.append(f"| **{label}** | " + " | ".join(means) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--isps", default="infinite-isp,libraw,darktable,rt-pop2lab,rt-local")
    p.add_argument("--splits", default="all", help="all, or test frames, e.g. Indoor1,P9-19")
    p.add_argument("--trained", default="dual+global")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--raw-dir", type=Path, default=bf.make_real_pairs.RAW_DIR)
    p.add_argument("--work-dir", type=Path, default=bf.REPO / "runs" / "benchmark_fidelity")
    p.add_argument("--out", type=Path, default=None, help="report JSON [default: WORK_DIR/lofo/report.json]")
    p.add_argument("--table", action="store_true", help="print the report's Markdown tables and exit")
    args = p.parse_args(argv)
    out_path = args.out or args.work_dir / "lofo" / "report.json"
    if args.table:
        print(markdown(json.loads(out_path.read_text())))
        return 0
    if not args.raw_dir.is_dir():
        print(f"{args.raw_dir}: no real RAW files (../shared/realdata/raw); nothing to benchmark", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    report = json.loads(out_path.read_text()) if out_path.is_file() else {"matrix": {}}
    splits = SPLITS if args.splits == "all" else [s for s in SPLITS if s[1] in args.splits.split(",")]
    methods, seeds = [m for m in args.trained.split(",") if m], [int(s) for s in args.seeds.split(",")]
    for isp in [s for s in args.isps.split(",") if s]:
        dirs = bf.make_frames(isp, args.raw_dir.resolve(), args.work_dir / "pairs", args.patch)
        for train, test in splits:
            scores = run_split(isp, train, test, dirs, args, methods, seeds)
            report["matrix"].setdefault(isp, {})[f"{'+'.join(train)} → {test}"] = scores
            print(f"{isp} {'+'.join(train)} → {test}: " + ", ".join(f"{m} {s['psnr']:.2f}" for m, s in scores.items()
                                                                      if not m.endswith(" runs")), flush=True)
            with atomic_write(out_path) as tmp:
                tmp.write_text(json.dumps(report, indent=1))
    report["settings"] = {k: str(v) for k, v in vars(args).items()} | {"seconds": round(time.perf_counter() - t0)}
    with atomic_write(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    print(f"report: {out_path} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
