"""The paper's ablation (Table 3) on real and synthetic pairs: mosaic, UPI, baseline, single and dual.

The naive mosaic and UPI (no training) and the `baseline`, `single` (+ mask) and `dual` (mask
fusion) reverse ISPs trained on the same pairs with the same budget, scored with the challenge
PSNR/SSIM overall, on overexposed pixels and on the rest.

    python scripts/benchmark_fidelity.py [--steps 600] [--width 8] [--crop 64] [--batch 4] \
        [--match-params] [--quick] [--work-dir runs/benchmark_fidelity] [--out report.json]

Datasets, each split by source image (never by patch: a source's patches share content):
  libraw     every real RAW file of ../shared/realdata/raw (scripts/make_real_pairs.py's table),
             rendered by LibRaw, cut into `--patch` px patches every `--stride` px;
  darktable  the same files and patches rendered by darktable-cli (filmic);
  synthetic  `--synthetic-count` pairs from scikit-image photos (revisp_tf.data.synthetic);
  libraw->darktable  the libraw models scored on darktable's test split (an unseen ISP, like the
             challenge's Test2 on unseen conditions).
Held out for testing: TEST_SOURCES (real) and SYNTHETIC_TEST_SCENES; the rest trains.

Budget: every net trains `--steps` steps of `--batch` random `--crop` px crops (dihedral
augmentation), Adam at a constant `--lr`. single and dual minimise the paper's losses with the
same gamma 1/3.6 (single: eq. 4, on all pixels; dual: eq. 1 and 3, on the non-overexposed
pixels, where `--dual-noe-gamma 0` turns it off as training/configs/paper_s7_dual.yaml does),
so that only the architecture differs; the baseline minimises the bayer MSE (it has no
demosaiced output). The paper's closing L2 phase (20 of 220 epochs) is left out: each phase
change retraces the training step, which on this CPU costs 20-90 s per net, more than such a
short phase would train. The trainer's validation (after each of the EPOCHS epochs) runs on the
test split and only logs: nothing is selected on it, the scored weights are the last step's.
Trained runs are kept in `--work-dir` and reused when their config matches (delete them, or
pass --fresh, to retrain).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_real_pairs  # noqa: E402

from revisp_tf.data.pairs import make_pairs_from_raw  # noqa: E402
from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.data.synthetic import SOURCE_SCENES, make_synthetic_pairs  # noqa: E402
from revisp_tf.evaluate import evaluate_pairs  # noqa: E402
from revisp_tf.io.images import atomic_write  # noqa: E402
from revisp_tf.isp.sensor import PROJECT_10BIT  # noqa: E402
from revisp_tf.models import check_rgb, load_reverse_isp, trainable_parameter_count  # noqa: E402
from revisp_tf.train import config as config_lib  # noqa: E402
from revisp_tf.train.train_lib import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# One source of each camera that has two stays out: its sibling trains, as a challenge's test
# scenes share the training sensor. Outdoor1 is also the only real source with many overexposed
# pixels, so without it the OE column of the test split would be empty.
TEST_SOURCES = ("huawei_p9/RAW_00242.dng", "infinite_isp_grbg8/Outdoor1_2592x1536_8bit_GRBG.raw")
SYNTHETIC_TEST_SCENES = ("coffee", "stereo_motorcycle")
VARIANTS = ("baseline", "single", "dual")
BASELINES = ("mosaic", "upi")
PAPER_TABLE3 = {"baseline": 26.295, "single": 27.23, "dual": 28.9}  # S7 training set PSNR, dB
EPOCHS = 2  # the step budget in epochs: the trainer validates (logs only) after each
GAMMA = 1 / 3.6  # paper eq. 4 (single, all pixels) and eq. 1 (dual, non-overexposed pixels)
QUICK = {"steps": 4, "width": 4, "crop": 64, "batch": 2, "stride": 512, "datasets": "libraw", "max_test": 8}


def split_sources(files, test) -> tuple[list[str], list[str]]:
    """(train, test) lists of source files; every `test` entry must be one of `files`."""
    missing = sorted(set(test) - set(files))
    if missing:
        raise ValueError(f"test sources {missing} are not among the RAW files {sorted(files)}")
    return [f for f in files if f not in test], [f for f in files if f in test]


def _fresh_dir(path: Path, params: dict) -> bool:
    """True if `path` holds a finished split made with `params`; otherwise empties it and returns False."""
    stamp = path / "split.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return True
    shutil.rmtree(path, ignore_errors=True)
    return False


def _stamp(path: Path, params: dict) -> None:
    with atomic_write(path / "split.json") as tmp:
        tmp.write_text(json.dumps(params, indent=1))


def make_real_split(isp: str, raw_dir: Path, out: Path, patch: int, stride: int) -> dict:
    """Renders every RAW file of make_real_pairs' table with `isp` into out/train and out/test (by source)."""
    files = sorted(make_real_pairs.FILES)
    train_files, test_files = split_sources(files, TEST_SOURCES)
    params = {"isp": isp, "patch": patch, "stride": stride, "train": train_files, "test": test_files}
    if not _fresh_dir(out, params):
        for split, names in (("train", train_files), ("test", test_files)):
            for rel in names:
                kw = make_real_pairs.raw_kwargs(raw_dir, make_real_pairs.FILES[rel])
                make_pairs_from_raw(raw_dir / rel, out / split, patch, stride, progress=False, isp=isp, **kw)
        _stamp(out, params)
    return params


def make_synthetic_split(out: Path, count: int, patch: int, seed: int) -> dict:
    """Synthetic pairs: the test scenes' share of `count` in out/test, the other scenes' in out/train."""
    test = tuple(s for s in SOURCE_SCENES if s in SYNTHETIC_TEST_SCENES)
    train_scenes = tuple(s for s in SOURCE_SCENES if s not in test)
    n_test = round(count * len(test) / len(SOURCE_SCENES))
    params = {"count": count, "patch": patch, "seed": seed, "train": list(train_scenes), "test": list(test)}
    if not _fresh_dir(out, params):
        make_synthetic_pairs(out / "train", count - n_test, seed, patch, scenes=train_scenes)
        make_synthetic_pairs(out / "test", n_test, seed + 1, patch, scenes=test)
        _stamp(out, params)
    return params


def overexposed_share(split_dir: Path) -> dict:
    """Mean share of overexposed pixels over a split's patches, and the share of patches with any (its meta.json)."""
    meta = json.loads((split_dir / "meta.json").read_text())
    shares = [p["overexposed"] for scene in meta["scenes"].values() for p in scene["patches"]]
    n = len(shares)
    return {"patches": n, "pixels": sum(shares) / n, "patches_with_oe": sum(v > 0 for v in shares) / n}


def experiment(variant: str, width: int, train_dir: Path, val_dir: Path, args) -> config_lib.ExperimentConfig:
    """The config every variant shares but for its model and losses."""
    per_epoch = math.ceil(args.steps / EPOCHS)
    loss = "mse_bayer" if variant == "baseline" else "paper"
    return config_lib.parse_config(
        {
            "model": {"variant": variant, "base_filters": width, "depth": 4},
            "data": {
                "source": "folder", "train_dir": str(train_dir), "val_dir": str(val_dir), "layout": "aim22",
                "sensor": PROJECT_10BIT.name, "crop": args.crop, "batch_size": args.batch, "val_images": 1,
            },
            "loss": {
                "gamma": GAMMA if variant == "single" else None,
                "noe_gamma": (args.dual_noe_gamma or None) if variant == "dual" else None,
            },
            "optim": {
                "optimizer": "adam",
                "weight_decay": 1e-6,
                "phases": [{"epochs": EPOCHS, "learning_rate": args.lr, "loss": loss}],
            },
            "runtime": {
                "seed": args.seed, "steps_per_epoch": per_epoch,
                "checkpoint_every_steps": per_epoch * EPOCHS, "log_every_steps": per_epoch,
            },
        }
    )


def run_name(data: str, variant: str, width: int, args) -> str:
    """Run folder name: the data set, the variant and what the budget and losses change."""
    name = f"{data}_{variant}_w{width}_s{args.steps}_c{args.crop}_b{args.batch}_seed{args.seed}"
    return name + ("_nogamma" if variant == "dual" and not args.dual_noe_gamma else "")


def train_variant(cfg, run_dir: Path, fresh: bool) -> tuple[Path, float | None]:
    """Trains `cfg` into `run_dir` (or reuses a finished run of the same config); (model path, seconds)."""
    saved = run_dir / "config.yaml"
    if not fresh and (run_dir / "DONE").is_file() and yaml.safe_load(saved.read_text()) == config_lib.to_dict(cfg):
        history = json.loads((run_dir / "history.json").read_text())
        return run_dir / "model.keras", sum(h["seconds"] for h in history)
    t0 = time.perf_counter()
    result = train(cfg, run_dir, overwrite=True, verbose=0)
    return result.model_path, time.perf_counter() - t0


def graph_predict(model: keras.Model):
    """`rgb -> packed bayer` through one traced graph: an eager Keras call costs ~0.2 s of Python per image here."""

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x):
        return model(x, training=False)

    def predict(rgb):
        check_rgb(rgb)
        return run(np.asarray(rgb, np.float32)[np.newaxis]).numpy()[0]

    return predict


def summarise(report: dict) -> dict:
    """evaluate_pairs' entry of one method -> a table row's numbers (OE over images with OE pixels)."""
    images = report["images"]
    return {
        "psnr": report["psnr"],
        "ssim": report["ssim"],
        "psnr_oe": report["psnr_oe"],
        "psnr_noe": report["psnr_noe"],
        "n_images": len(images),
        "n_oe_images": sum(not math.isnan(r["psnr_oe"]) for r in images),
    }


def table_rows(baseline_scores: dict, model_scores: dict) -> list[dict]:
    """Rows of the table: per test set, the baselines then the trained variants present."""
    rows = []
    for key, scores in baseline_scores.items():
        for method, r in scores.items():
            rows.append({"dataset": key, "method": method, "params": None, "train_s": None, **summarise(r)})
        for variant in VARIANTS:
            m = model_scores.get(key, {}).get(variant)
            if m is not None:
                row = {"dataset": key, "method": variant, "params": m["params"], "train_s": m["train_s"]}
                rows.append({**row, **summarise(m["score"])})
    return rows


def _num(v, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_table(rows: list[dict]) -> str:
    """One line per (dataset, method): params, PSNR, SSIM, PSNR on OE / other pixels, images with OE."""
    head = (
        f"{'dataset':<18} {'method':<9} {'params':>9} {'PSNR':>7} {'SSIM':>7} "
        f"{'PSNR OE':>8} {'PSNR NOE':>9} {'OE imgs':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['dataset']:<18} {r['method']:<9} {_num(r.get('params'), ','):>9} {_num(r['psnr'], '7.2f')} "
            f"{_num(r['ssim'], '7.4f')} {_num(r['psnr_oe'], '8.2f')} {_num(r['psnr_noe'], '9.2f')} "
            f"{r['n_oe_images']:>3}/{r['n_images']:<4}"
        )
    return "\n".join(lines)


def ordering(rows: list[dict], dataset: str) -> str:
    """The trained variants of `dataset` from best to worst PSNR, e.g. 'dual > single > baseline'."""
    trained = sorted((r for r in rows if r["dataset"] == dataset and r["method"] in VARIANTS), key=lambda r: -r["psnr"])
    return " > ".join(r["method"] for r in trained)


def write_json(path: Path, data: dict) -> None:
    """JSON with NaN written as null, atomically."""
    clean = json.loads(json.dumps(data).replace("NaN", "null"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=1))


def _examples(test_dir: Path, limit: int | None):
    examples = list(scan_pairs(test_dir, layout="aim22", sensor=PROJECT_10BIT))
    return examples[:limit] if limit else examples


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps of every net (rounded up to whole epochs)")
    ap.add_argument("--width", type=int, default=8, help="U-Net base filters of every net (the paper's is 64)")
    ap.add_argument("--match-params", action="store_true", help="baseline and single at width*sqrt(2): ~dual's params")
    ap.add_argument("--dual-noe-gamma", type=float, default=GAMMA, help="dual's NOE loss gamma (eq. 1); 0: none")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patch", type=int, default=128, help="real and synthetic patch side, px")
    ap.add_argument("--stride", type=int, default=256, help="real patch grid step, px (> patch: fewer patches)")
    ap.add_argument("--synthetic-count", type=int, default=192)
    ap.add_argument("--datasets", default="libraw,darktable,synthetic")
    ap.add_argument("--max-test", type=int, default=0, help="score at most this many test images per dataset (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    quick = ", ".join(f"{k}={v}" for k, v in QUICK.items())
    ap.add_argument("--quick", action="store_true", help=f"a 2-3 minute smoke run: {quick}")
    ap.add_argument("--fresh", action="store_true", help="retrain even where a finished run of the same config exists")
    ap.add_argument("--raw-dir", type=Path, default=make_real_pairs.RAW_DIR)
    ap.add_argument("--work-dir", type=Path, default=REPO / "runs" / "benchmark_fidelity")
    ap.add_argument("--out", type=Path, help="report JSON (default WORK_DIR/report.json)")
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
        args.work_dir = args.work_dir / "quick"
    args.steps = EPOCHS * math.ceil(args.steps / EPOCHS)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = set(args.datasets) - {"libraw", "darktable", "synthetic"}
    if unknown:
        ap.error(f"--datasets: unknown {sorted(unknown)}; expected libraw, darktable, synthetic")
    args.out = args.out or args.work_dir / "report.json"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    raw_dir = args.raw_dir.resolve()
    data_root = args.work_dir / "data"
    widths = {v: args.width for v in VARIANTS}
    if args.match_params:
        widths["baseline"] = widths["single"] = round(args.width * math.sqrt(2))
    print(f"steps {args.steps} x batch {args.batch} x crop {args.crop}, widths {widths}, lr {args.lr:g}", flush=True)

    splits, sources = {}, {}
    for name in args.datasets:
        t0 = time.perf_counter()
        if name == "synthetic":
            out = data_root / f"synthetic_n{args.synthetic_count}_p{args.patch}_seed{args.seed}"
            sources[name] = make_synthetic_split(out, args.synthetic_count, args.patch, args.seed)
        else:
            out = data_root / f"{name}_p{args.patch}_s{args.stride}"
            sources[name] = make_real_split(name, raw_dir, out, args.patch, args.stride)
        splits[name] = out
        sources[name]["overexposed"] = {split: overexposed_share(out / split) for split in ("train", "test")}
        oe = ", ".join(
            f"{split} {v['patches']} patches, {v['pixels']:.2%} OE pixels, {v['patches_with_oe']:.0%} with any"
            for split, v in sources[name]["overexposed"].items()
        )
        print(f"data {name}: {out} ({time.perf_counter() - t0:.0f} s); test {sources[name]['test']}; {oe}", flush=True)

    # Test sets: each dataset's own, plus the cross-ISP one (libraw models on darktable's test split).
    tests = {name: (name, splits[name] / "test") for name in args.datasets}
    if {"libraw", "darktable"} <= set(args.datasets):
        tests["libraw->darktable"] = ("libraw", splits["darktable"] / "test")
    examples = {key: _examples(d, args.max_test or None) for key, (_, d) in tests.items()}

    report = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "sources": sources}
    baseline_scores, model_scores, runs = {}, {key: {} for key in tests}, {}
    for key in tests:
        same = key == "libraw->darktable" and "darktable" in baseline_scores  # the same images
        baseline_scores[key] = baseline_scores["darktable"] if same else evaluate_pairs(
            examples[key], PROJECT_10BIT, baselines=BASELINES, progress=False
        )
    for name in args.datasets:
        for variant in VARIANTS:
            run_dir = args.work_dir / "runs" / run_name(splits[name].name, variant, widths[variant], args)
            cfg = experiment(variant, widths[variant], splits[name] / "train", splits[name] / "test", args)
            model_path, seconds = train_variant(cfg, run_dir, args.fresh)
            model = load_reverse_isp(model_path)
            params = trainable_parameter_count(model)
            predict = graph_predict(model)
            runs[f"{name}/{variant}"] = {"run_dir": str(run_dir), "params": params, "train_s": seconds}
            for key, (trained_on, _) in tests.items():
                if trained_on != name:
                    continue
                t0 = time.perf_counter()
                scores = evaluate_pairs(examples[key], PROJECT_10BIT, predict, baselines=(), progress=False)
                model_scores[key][variant] = {"score": scores["model"], "params": params, "train_s": seconds}
                print(
                    f"{key:<18} {variant:<9} {params:>9,} params, trained {seconds:.0f} s: "
                    f"PSNR {scores['model']['psnr']:.2f} dB (scored in {time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
            write_json(args.out, {**report, "rows": table_rows(baseline_scores, model_scores), "runs": runs})
            keras.backend.clear_session()
    rows = table_rows(baseline_scores, model_scores)
    total = time.perf_counter() - t_start
    report.update(rows=rows, runs=runs, seconds=total, orderings={key: ordering(rows, key) for key in tests})
    write_json(args.out, report)
    print()
    print(format_table(rows))
    print()
    for key in tests:
        print(f"{key}: {report['orderings'][key]}")
    paper = " > ".join(sorted(PAPER_TABLE3, key=lambda v: -PAPER_TABLE3[v]))
    print(f"paper Table 3 (S7, width 64): {paper} ({', '.join(f'{v} {p} dB' for v, p in PAPER_TABLE3.items())})")
    print(f"total {total / 60:.1f} min; report {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
