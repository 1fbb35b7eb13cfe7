"""Per-camera fidelity: train on one frame of a camera, test on another frame of the same camera.

    python scripts/benchmark_fidelity.py [--isps libraw,darktable,rt-pop2lab,rt-local[,infinite-isp]] \
        [--frame-pairs all] [--trained single,dual,single+global,dual+global] [--seeds 0,1] \
        [--steps 150] [--ablation] [--work-dir runs/benchmark_fidelity]
    python scripts/benchmark_fidelity.py --table     # the report's Markdown tables (docs/benchmarks.md)
    python scripts/benchmark_fidelity.py --tflite fp32,fp16,int8 [--isps ... --frame-pairs ... --trained ... --seeds ...]
    python scripts/benchmark_fidelity.py --jpeg [--isps ... --frame-pairs ... --trained ... --seeds ...]

The paper's question is whether a model trained on a camera's pairs carries over to new scenes
of that camera; white balance and exposure differ from frame to frame. For each camera of
../shared/realdata/raw with two frames (Huawei P9 RAW_00019 / RAW_00242, Infinite-ISP
Indoor1 / Outdoor1), both ways (4 frame pairs), and each real ISP (LibRaw, darktable, and two
RawTherapee profiles with local operators, the phone-like case), methods:

  untrained  mosaic, upi (Brooks et al.'s default camera), fitted (the global inverse fitted in
             closed form on the training frame), oracle (the same fitted on the test frame itself:
             what a frame-blind global stage could reach at best);
  trained    `single` and `dual` (the paper's nets, `global_stage: none`), and both with the fitted
             global stage (`training/configs/camera.yaml`), each with every seed of --seeds; plus the
             paper's ablation (`baseline`) on one frame pair per camera with LibRaw and Pop 2 Lab.

Every trained method gets the same budget: --steps steps of --batch random --crop px crops,
Adam, the bayer L2 (the PSNR's own loss; the paper's perceptual losses need Demosaic Net targets
and LPIPS, which this budget cannot afford on a CPU), nets at --width filters and depth 3.
The test frame is never used for anything but the scores (the trainer's validation runs on a
crop of the training frame). Finished runs are reused when their config matches.
Scores: challenge PSNR/SSIM over each test patch, OE and NOE PSNR, means over patches.

--jpeg (a separate path, `jpeg_main`): on lossless (PNG) renders, each selected run is trained
twice, as it is and with the JPEG augmentation (JPEG_AUGMENTATION), and scored on the test frame's
lossless RGB and on it recompressed at each of JPEG_QUALITIES; the drop against lossless, per run,
beside UPI and the fitted global stage on the same RGB, and benchmark_jpeg's ceiling for the
fitted stage (the share of its JPEG-induced error a linear 7x7 filter could remove at best, and
the share 4:2:0 chroma subsampling makes of it).
Files and report under WORK_DIR/jpeg/.

--tflite (a separate path, `tflite_main`; it never trains): each finished run of the selection is
exported to TFLite in the given precisions (static, the patch size; int8 calibrated on the
training frame's RGB, the camera's own images) and scored on the test frame with the LiteRT
interpreter beside its Keras model. Precisions: fp32, fp16, int8 (export_tflite's default: each
net's head, and a global stage, stay float32), int8+none (everything int8 but the mask),
int8+PART[+PART] (PARTs of revisp_tf.choices.FLOAT_PARTS in float32). Files and report
under WORK_DIR/tflite/.
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

import numpy as np  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_real_pairs  # noqa: E402
from benchmark_jpeg import chroma_share, linear_filter_share, recompress, share_to_halve  # noqa: E402

from revisp_tf.data.pairs import make_pairs_from_raw  # noqa: E402
from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.global_stage.placement import frame_contexts  # noqa: E402
from revisp_tf.io.atomic import atomic_write  # noqa: E402
from revisp_tf.io.images import read_raw_npy, read_rgb, write_rgb  # noqa: E402
from revisp_tf.io.metadata import patch_captures  # noqa: E402
from revisp_tf.isp.sensor import PROJECT_10BIT  # noqa: E402
from revisp_tf.models import has_global_stage, load_reverse_isp, predict_bayer  # noqa: E402
from revisp_tf.scoring import (
    baselines,  # noqa: E402
    evaluate,  # noqa: E402
)
from revisp_tf.train import config as config_lib  # noqa: E402
from revisp_tf.train.train_lib import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CAMERA_CONFIG = REPO / "training" / "configs" / "camera.yaml"
FRAMES = {
    "P9-19": "huawei_p9/RAW_00019.raw16",
    "P9-242": "huawei_p9/RAW_00242.dng",
    "Indoor1": "infinite_isp_grbg8/Indoor1_2592x1536_8bit_GRBG.raw",
    "Outdoor1": "infinite_isp_grbg8/Outdoor1_2592x1536_8bit_GRBG.raw",
    "Outdoor2": "infinite_isp_grbg8/Outdoor2_2592x1536_8bit_GRBG.raw",
    "Outdoor4": "infinite_isp_grbg8/Outdoor4_2592x1536_8bit_GRBG.raw",
    "550D": "canon_550d/colorchart.dng",
    "N900": "nokia_n900/bayer_small.png",
}
# Infinite-ISP renders each frame of its sensor with that frame's tuned config, and other cameras'
# frames with Indoor1's (its 3A sets their white balance and exposure; the sensor fields come from the RAW).
# Frames smaller than the patch size get smaller patches: the N900 crop is 344 x 254 px after CFA alignment.
FRAME_PATCH = {"N900": 168}
INFINITE_ISP_CONFIGS = {name: FRAMES[name].replace("8bit_GRBG.raw", "10bit_GRBG-configs.yml")
                        for name in FRAMES if name.startswith(("Indoor", "Outdoor"))}
INFINITE_ISP_DEFAULT_CONFIG = INFINITE_ISP_CONFIGS["Indoor1"]
FRAME_PAIRS = (("P9-19", "P9-242"), ("P9-242", "P9-19"), ("Indoor1", "Outdoor1"), ("Outdoor1", "Indoor1"))
# name -> make_pairs_from_raw arguments
ISPS = {
    "libraw": {"isp": "libraw"},
    "darktable": {"isp": "darktable"},
    "rt-pop2lab": {"isp": "rawtherapee", "profile": "Pop 2 Lab"},
    "rt-local": {"isp": "rawtherapee", "profile": "Standard Film Curve - ISO High"},  # film curve + denoising
    "infinite-isp": {"isp": "infinite-isp"},  # the profile: the frame's config (INFINITE_ISP_CONFIGS)
    # More of RawTherapee's bundled tone "cameras", for the generic model's training renders.
    "rt-pop1": {"isp": "rawtherapee", "profile": "Pop 1"},
    "rt-film-low": {"isp": "rawtherapee", "profile": "Standard Film Curve - ISO Low"},
}
UNTRAINED = ("mosaic", "upi", "fitted", "oracle")
# A diagnostic, not a method: the training frame's fit with the 4 per-channel gains that suit the
# test frame best (least squares). What a per-frame gain (white balance, exposure) is worth.
GAIN_ORACLE = "fitted+test gains"
TRAINED = {  # name -> (variant, global_stage)
    "baseline": ("baseline", "none"),
    "single": ("single", "none"),
    "dual": ("dual", "none"),
    "single+global": ("single", "fitted"),
    "dual+global": ("dual", "fitted"),
}
ABLATION_ISPS = ("libraw", "rt-pop2lab")
ABLATION_PAIRS = (("P9-19", "P9-242"), ("Outdoor1", "Indoor1"))
FIELDS = ("psnr", "ssim", "psnr_oe", "psnr_noe")


def make_frames(isp: str, raw_dir: Path, out: Path, patch: int, rgb_format: str = "jpg", names=None) -> dict[str, Path]:
    """Each frame's pairs (`names`, default every frame) in a folder of its own, rendered by `isp` (reused when the stamp matches)."""
    dirs = {}
    for name in names or FRAMES:
        rel, size = FRAMES[name], FRAME_PATCH.get(name, patch)
        d = out / isp / name
        isp_args = dict(ISPS[isp])
        if isp_args["isp"] == "infinite-isp":
            isp_args["profile"] = str(raw_dir / INFINITE_ISP_CONFIGS.get(name, INFINITE_ISP_DEFAULT_CONFIG))
        params = {"isp": isp_args, "patch": size, "source": rel} | ({} if rgb_format == "jpg" else {"rgb_format": rgb_format})
        stamp = d / "frame.json"
        if not (stamp.is_file() and json.loads(stamp.read_text()) == params):
            shutil.rmtree(d, ignore_errors=True)
            kw = make_real_pairs.raw_kwargs(raw_dir, make_real_pairs.FILES[rel])
            make_pairs_from_raw(raw_dir / rel, d, size, progress=False, rgb_format=rgb_format, **isp_args, **kw)
            with atomic_write(stamp) as tmp:
                tmp.write_text(json.dumps(params))
        dirs[name] = d
    return dirs


def experiment(method: str, seed: int, train_dir: Path, args) -> config_lib.ExperimentConfig:
    """camera.yaml with the method's model, the shared budget and the seed."""
    variant, stage = TRAINED[method]
    values = yaml.safe_load(CAMERA_CONFIG.read_text())
    overrides = [
        f"model.variant={variant}", f"model.global_stage={stage}", f"model.base_filters={args.width}",
        f"data.train_dir={train_dir}", f"data.val_dir={train_dir}", f"data.crop={args.crop}",
        f"data.batch_size={args.batch}", f"runtime.seed={seed}", f"runtime.steps_per_epoch={args.steps}",
        "runtime.checkpoint_every_steps=100000", *args.set, f"optim.phases=[{{epochs: 1, learning_rate: {args.lr}, loss: mse_bayer}}]",
    ]
    return config_lib.parse_config(values, overrides)


def train_run(cfg, run_dir: Path) -> tuple[Path, float | None]:
    """Trains `cfg` into `run_dir`, or reuses a finished run of the same config; (model path, seconds, reused).

    A reused run's seconds are those it took when trained (config written to DONE written)."""
    saved, done = run_dir / "config.yaml", run_dir / "DONE"
    if done.is_file() and yaml.safe_load(saved.read_text()) == config_lib.to_dict(cfg):
        return run_dir / "model.keras", done.stat().st_mtime - saved.stat().st_mtime, True
    t0 = time.perf_counter()
    result = train(cfg, run_dir, overwrite=True, verbose=0)
    return result.model_path, time.perf_counter() - t0, False


def score_model(model_path: Path, examples, with_metadata: bool = True) -> dict:
    """The model's scores on `examples`; a global-stage model gets their recorded gains, as `eval` gives by default."""
    model = load_reverse_isp(model_path)
    contexts = None
    if has_global_stage(model):
        contexts = frame_contexts(examples, patch_captures([e.rgb for e in examples]) if with_metadata else None)
    predict = lambda rgb, context=None: predict_bayer(model, rgb, context=context)  # noqa: E731
    return evaluate.evaluate_pairs(examples, PROJECT_10BIT, predict, (), progress=False, contexts=contexts)["model"]


def _summary(entry: dict) -> dict:
    return {f: entry[f] for f in FIELDS}


def _best_gains(fit, examples) -> np.ndarray:
    """Per packed channel, the gain g minimising |g * fit - raw|^2 over the examples."""
    num, den = np.zeros(4), np.zeros(4)
    for ex in examples:
        pred = fit.predict(read_rgb(ex.rgb)).reshape(-1, 4)
        raw = PROJECT_10BIT.to_model_units(read_raw_npy(ex.raw)).reshape(-1, 4)
        num, den = num + (pred * raw).sum(0), den + (pred * pred).sum(0)
    return num / np.maximum(den, 1e-12)


def run_pair(isp: str, a: str, b: str, dirs: dict, args, methods, seeds) -> dict:
    """Every method's scores on frame b after fitting / training on frame a."""
    train_ex = scan_pairs(dirs[a], sensor=PROJECT_10BIT)
    test_ex = scan_pairs(dirs[b], sensor=PROJECT_10BIT)
    out = {}
    fits = {"fitted": baselines.fit_baseline(train_ex, PROJECT_10BIT), "oracle": baselines.fit_baseline(test_ex, PROJECT_10BIT)}
    for name in UNTRAINED:
        base = "fitted" if name in fits else name
        rep = evaluate.evaluate_pairs(test_ex, PROJECT_10BIT, None, (base,), progress=False, fitted=fits.get(name))
        out[name] = _summary(rep[base])
    gains = _best_gains(fits["fitted"], test_ex)
    predict = lambda rgb: np.clip(fits["fitted"].predict(rgb) * gains, 0.0, 1.0)  # noqa: E731
    out[GAIN_ORACLE] = _summary(evaluate.evaluate_pairs(test_ex, PROJECT_10BIT, predict, (), progress=False)["model"])
    out[GAIN_ORACLE]["gains"] = gains.tolist()
    for method in methods:
        runs = []
        for seed in seeds:
            cfg = experiment(method, seed, dirs[a], args)
            run_dir = args.work_dir / "runs" / isp / f"{a}-to-{b}" / f"{method}-s{seed}"
            model_path, secs, reused = train_run(cfg, run_dir)
            runs.append({"seed": seed, "train_s": round(secs, 1), "reused": reused,
                         **_summary(score_model(model_path, test_ex))})
            print(f"  {isp} {a}->{b} {method} seed {seed}: {runs[-1]['psnr']:.2f} dB"
                  f" ({secs:.0f} s{', reused' if reused else ''})", flush=True)
        out[method] = {f: float(np.mean([r[f] for r in runs])) for f in FIELDS} | {
            "psnr_spread": float(np.ptp([r["psnr"] for r in runs])), "runs": runs}
    return out


def _f(v, fmt=".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def markdown(report: dict) -> str:
    """The matrix as Markdown tables: PSNR (and spread over seeds) per ISP and frame pair."""
    lines = []
    for isp, pairs in report["matrix"].items():
        methods = list(dict.fromkeys(m for scores in pairs.values() for m in scores))  # a method may lack some pairs
        lines += [f"### {isp}", "", "| train → test | " + " | ".join(methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for pair, scores in pairs.items():
            cells = ["-" if m not in scores else
                     _f(scores[m]["psnr"]) + (f" ±{scores[m]['psnr_spread'] / 2:.2f}" if "psnr_spread" in scores[m] else "")
                     for m in methods]
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
        means = [_f(float(np.mean([s[m]["psnr"] for s in pairs.values()]))) if all(m in s for s in pairs.values()) else "-"
                 for m in methods]
        lines += ["| **mean** | " + " | ".join(means) + " |", ""]
    return "\n".join(lines + _oe_table(report["matrix"]))


def _oe_table(matrix: dict) -> list[str]:
    """OE PSNR of every method on the test frames that have overexposed pixels."""
    rows = {(isp, pair): s for isp, pairs in matrix.items() for pair, s in pairs.items()
            if any(not math.isnan(v["psnr_oe"]) for v in s.values())}
    methods = [m for m in dict.fromkeys(m for s in rows.values() for m in s) if m not in ("mosaic", GAIN_ORACLE)]
    if not rows:
        return []
    out = ["### Overexposed pixels (OE PSNR, dB, mean over seeds)", "",
           "| ISP | train → test | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for (isp, pair), s in rows.items():
        out.append(f"| {isp} | {pair} | " + " | ".join(_f(s[m]["psnr_oe"]) if m in s else "-" for m in methods) + " |")
    return out + [""]


JPEG_QUALITIES = (95, 85, 70)  # --jpeg: the test RGB recompressed at these
JPEG_AUGMENTATION = "data.jpeg_quality=[70, 95]"  # the augmented twin of each run


def recompressed_frame(src: Path, dst: Path, quality: int) -> Path:
    """A copy of the pairs folder `src` with each RGB through libjpeg at `quality` (`benchmark_jpeg.recompress`), stored lossless (PNG)."""
    stamp = dst / "recompressed.json"
    params = {"source": str(src), "quality": quality}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.suffix == ".png":
            write_rgb(dst / f.name, recompress(read_rgb(f), quality))
        elif f.suffix in (".npy", ".json") and f.name != "frame.json":
            shutil.copy2(f, dst / f.name)
    with atomic_write(stamp) as tmp:
        tmp.write_text(json.dumps(params))
    return dst


def _jpeg_row(isp: str, pair: str, name: str, scores: dict, drops: dict) -> str:
    return f"| {isp} {pair} | {name} | " + " | ".join(f"{v:.2f}" for v in (*scores.values(), *drops.values())) + " |"


def jpeg_main(args) -> int:
    """--jpeg: each selected run trained with and without the JPEG augmentation, on lossless (PNG) renders,
    scored on the test frame's lossless RGB and on it recompressed at each of JPEG_QUALITIES."""
    pairs = FRAME_PAIRS if args.frame_pairs == "all" else [tuple(p.split(":")) for p in args.frame_pairs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    root = args.work_dir / "jpeg"
    out_path = args.out or root / "report.json"
    aug_args = argparse.Namespace(**{**vars(args), "set": [*args.set, JPEG_AUGMENTATION]})
    report, lines = {}, []
    for isp in [s for s in args.isps.split(",") if s]:
        dirs = make_frames(isp, args.raw_dir.resolve(), root / "pairs", args.patch, rgb_format="png")
        for a, b in pairs:
            tests = {"lossless": dirs[b]} | {
                f"q{q}": recompressed_frame(dirs[b], root / "pairs" / isp / f"{b}-q{q}", q) for q in JPEG_QUALITIES}
            tests = {k: scan_pairs(d, sensor=PROJECT_10BIT) for k, d in tests.items()}
            fit = baselines.fit_baseline(scan_pairs(dirs[a], sensor=PROJECT_10BIT), PROJECT_10BIT)
            for base in ("upi", "fitted"):  # untrained, the same for every seed
                scores = {k: evaluate.evaluate_pairs(ex, PROJECT_10BIT, None, (base,), progress=False, fitted=fit)[base]["psnr"]
                          for k, ex in tests.items()}
                drops = {k: scores["lossless"] - v for k, v in scores.items() if k != "lossless"}
                report.setdefault(isp, {}).setdefault(f"{a} → {b}", {})[base] = {"psnr": scores, "drop": drops}
                lines.append(_jpeg_row(isp, f"{a} → {b}", base, scores, drops))
                print(lines[-1], flush=True)
            fitted = report[isp][f"{a} → {b}"]["fitted"]
            q85, lossless = ([fit.predict(read_rgb(e.rgb)) for e in tests[k]] for k in ("q85", "lossless"))
            q85_444 = [fit.predict(recompress(read_rgb(e.rgb), 85, "444")) for e in tests["lossless"]]
            fitted["q85 ceiling"] = ceiling = {  # how much of the JPEG loss any linear deblocker could undo
                "linear_share": linear_filter_share(q85, lossless), "chroma_share": chroma_share(q85, q85_444, lossless),
                "share_to_halve": share_to_halve(fitted["drop"]["q85"])}
            print(f"  fitted, q85: the best linear 7x7 filter fitted on the test frame itself removes {ceiling['linear_share']:.0%}"
                  f" of the JPEG-induced error, 4:2:0 chroma makes {ceiling['chroma_share']:.0%} of it; halving the drop needs"
                  f" {ceiling['share_to_halve']:.0%}", flush=True)
            for method in [m for m in args.trained.split(",") if m]:
                for seed in seeds:
                    for tag, run_args in (("", args), ("+jpeg aug", aug_args)):
                        cfg = experiment(method, seed, dirs[a], run_args)
                        run_dir = root / "runs" / isp / f"{a}-to-{b}" / f"{method}{tag.replace(' ', '')}-s{seed}"
                        model_path, secs, _ = train_run(cfg, run_dir)
                        scores = {k: score_model(model_path, ex)["psnr"] for k, ex in tests.items()}
                        drops = {k: scores["lossless"] - v for k, v in scores.items() if k != "lossless"}
                        report.setdefault(isp, {}).setdefault(f"{a} → {b}", {})[f"{method}{tag} s{seed}"] = {
                            "psnr": scores, "drop": drops, "train_s": round(secs, 1)}
                        lines.append(_jpeg_row(isp, f"{a} → {b}", f"{method}{tag} s{seed}", scores, drops))
                        print(lines[-1], flush=True)
    with atomic_write(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    qs = [f"q{q}" for q in JPEG_QUALITIES]
    print("| pair | run | lossless | " + " | ".join(qs) + " | " + " | ".join(f"drop {q}" for q in qs) + " |")
    print("|---|---|---|" + "---|" * 2 * len(qs))
    print("\n".join(lines))
    for isp, by_pair in report.items():
        for pair, runs in by_pair.items():
            for name, r in runs.items():
                if "+jpeg aug" in name:
                    plain = runs[name.replace("+jpeg aug", "")]["drop"]["q85"]
                    print(f"{isp} {pair} {name}: drop at q85 {r['drop']['q85']:.2f} dB with the augmentation, "
                          f"{plain:.2f} without (ratio {r['drop']['q85'] / plain:.2f})")
    print(f"report: {out_path}")
    return 0


TFLITE_MODES = {"fp32": "none", "fp16": "fp16", "int8": "int8"}  # --tflite name -> export_tflite(quantize=)


def _float_parts(mode: str):
    """export_tflite's float_parts for a --tflite mode: int8 = its default, int8+none = all int8, int8+A+B = A and B."""
    parts = mode.split("+")[1:]
    return None if not parts else [] if parts == ["none"] else parts


def tflite_main(args) -> int:
    """--tflite: the selection's finished runs as TFLite models, scored on the test frame beside Keras."""
    from ai_edge_litert.interpreter import Interpreter

    from revisp_tf.export.convert import export_tflite
    from revisp_tf.export.litert import run
    from revisp_tf.global_stage.context import context_window
    from revisp_tf.models.inference_form import inference_form

    modes = [m for m in args.tflite.split(",") if m]  # "int8+top": int8 with the last decoder level in float
    unknown = sorted({m for m in modes if m.split("+")[0] not in TFLITE_MODES or ("+" in m and not m.startswith("int8+"))})
    if unknown:
        print(f"--tflite: unknown precision(s) {unknown}; expected some of {', '.join(TFLITE_MODES)}"
              " (int8+PART: int8 with PART in float, PART from revisp_tf.choices.FLOAT_PARTS; int8+none: nothing)", file=sys.stderr)
        return 2
    pairs = FRAME_PAIRS if args.frame_pairs == "all" else [tuple(p.split(":")) for p in args.frame_pairs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    root = args.work_dir / "tflite"
    out_path = args.out or root / "report.json"
    report, lines = {}, []
    for isp in [s for s in args.isps.split(",") if s]:
        dirs = make_frames(isp, args.raw_dir.resolve(), args.work_dir / "pairs", args.patch)
        for a, b in pairs:
            train_ex, test_ex = scan_pairs(dirs[a], sensor=PROJECT_10BIT), scan_pairs(dirs[b], sensor=PROJECT_10BIT)
            for method in [m for m in args.trained.split(",") if m]:
                for seed in seeds:
                    run_dir = args.work_dir / "runs" / isp / f"{a}-to-{b}" / f"{method}-s{seed}"
                    cfg = experiment(method, seed, dirs[a], args)
                    saved = run_dir / "config.yaml"
                    if not ((run_dir / "DONE").is_file() and yaml.safe_load(saved.read_text()) == config_lib.to_dict(cfg)):
                        print(f"{run_dir}: no finished run of this config; run without --tflite first", file=sys.stderr)
                        return 1
                    model = load_reverse_isp(run_dir / "model.keras")
                    contexts = frame_contexts(test_ex) if has_global_stage(model) else None
                    calibration = [read_rgb(ex.rgb) for ex in train_ex]  # int8: the camera's own images
                    calibration_contexts = None if contexts is None else [  # each patch's slice of its frame's context
                        context_window(sm, y, x, *img.shape[:2]) for (sm, y, x), img in zip(frame_contexts(train_ex), calibration)]
                    entry = {"keras": _summary(score_model(run_dir / "model.keras", test_ex))}
                    for mode in modes:
                        path = root / isp / f"{a}-to-{b}" / f"{method}-s{seed}" / f"{mode}.tflite"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        t0 = time.perf_counter()
                        export = export_tflite(
                            inference_form(model), path, quantize=TFLITE_MODES[mode.split("+")[0]], size=(args.patch, args.patch),
                            representative_data=calibration if mode.startswith("int8") else None,
                            representative_contexts=calibration_contexts if mode.startswith("int8") else None,
                            float_parts=_float_parts(mode),
                            check_data=[test_ex[0].rgb], num_threads=args.tflite_threads)
                        interpreter = Interpreter(model_path=str(path), num_threads=args.tflite_threads)
                        predict = lambda rgb, context=None: run(interpreter, rgb, context)  # noqa: E731
                        scores = evaluate.evaluate_pairs(test_ex, PROJECT_10BIT, predict, (), progress=False,
                                                         contexts=contexts)["model"]
                        entry[mode] = _summary(scores) | {
                            "drop_db": entry["keras"]["psnr"] - scores["psnr"], "size_mb": export.size_bytes / 1e6,
                            "max_abs_vs_keras": export.max_abs_error, "seconds": round(time.perf_counter() - t0, 1)}
                        print(f"  {isp} {a}->{b} {method} s{seed} {mode}: {scores['psnr']:.2f} dB "
                              f"(Keras {entry['keras']['psnr']:.2f}, drop {entry[mode]['drop_db']:.3f} dB)", flush=True)
                    report.setdefault(isp, {}).setdefault(f"{a} → {b}", {})[f"{method}-s{seed}"] = entry
                    for name, sc in entry.items():
                        drop = "" if name == "keras" else f" | {sc['drop_db']:.3f} | {sc['max_abs_vs_keras']:.3g} | {sc['size_mb']:.2f}"
                        lines.append(f"| {isp} {a} → {b} | {method} s{seed} | {name} | {sc['psnr']:.2f} | {sc['ssim']:.4f} | "
                                     f"{_f(sc['psnr_oe'])}{drop or ' | - | - | -'} |")
    with atomic_write(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print("| pair | run | model | PSNR | SSIM | OE PSNR | drop vs Keras (dB) | max abs vs Keras | MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"report: {out_path}")
    return 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isps", default="libraw,darktable,rt-pop2lab,rt-local", help=f"some of {', '.join(ISPS)}")
    ap.add_argument("--frame-pairs", default="all", help="all, or e.g. P9-19:P9-242,Indoor1:Outdoor1")
    ap.add_argument("--trained", default="single,dual,single+global,dual+global")
    ap.add_argument("--ablation", action="store_true", help="also the baseline net on ABLATION_ISPS x ABLATION_PAIRS")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override camera.yaml for every run")
    ap.add_argument("--raw-dir", type=Path, default=make_real_pairs.RAW_DIR)
    ap.add_argument("--work-dir", type=Path, default=REPO / "runs" / "benchmark_fidelity")
    ap.add_argument("--out", type=Path, default=None, help="report JSON [default: WORK_DIR/report.json]")
    ap.add_argument("--jpeg", action="store_true", help="train each run with and without the JPEG augmentation "
                    "on lossless renders; score on the test RGB recompressed at JPEG_QUALITIES (WORK_DIR/jpeg/)")
    ap.add_argument("--table", action="store_true", help="print the report's Markdown tables and exit (runs nothing)")
    ap.add_argument("--tflite", default="", help="score finished runs as TFLite instead: e.g. fp32,fp16,int8 (see above)")
    ap.add_argument("--tflite-threads", type=int, default=2, help="LiteRT threads for --tflite")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.raw_dir.is_dir():
        print(f"{args.raw_dir}: no real RAW files (../shared/realdata/raw); nothing to benchmark", file=sys.stderr)
        return 1
    if args.tflite:
        return tflite_main(args)
    if args.jpeg:
        return jpeg_main(args)
    if args.table:
        print(markdown(json.loads((args.out or args.work_dir / "report.json").read_text())))
        return 0
    t0 = time.perf_counter()
    isps = [s for s in args.isps.split(",") if s]
    pairs = FRAME_PAIRS if args.frame_pairs == "all" else [tuple(p.split(":")) for p in args.frame_pairs.split(",")]
    methods = [m for m in args.trained.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",")]
    out_path = args.out or args.work_dir / "report.json"
    report = json.loads(out_path.read_text()) if out_path.is_file() else {}
    report.setdefault("matrix", {})
    dirs_by_isp = {}
    for isp in isps:
        dirs_by_isp[isp] = make_frames(isp, args.raw_dir.resolve(), args.work_dir / "pairs", args.patch)
        for a, b in pairs:
            todo = methods + (["baseline"] if args.ablation and isp in ABLATION_ISPS and (a, b) in ABLATION_PAIRS else [])
            scores = run_pair(isp, a, b, dirs_by_isp[isp], args, todo, seeds)
            report["matrix"].setdefault(isp, {}).setdefault(f"{a} → {b}", {}).update(scores)
            print(f"{isp} {a}->{b}: " + ", ".join(f"{m} {s['psnr']:.2f}" for m, s in scores.items()), flush=True)
            with atomic_write(out_path) as tmp:
                tmp.write_text(json.dumps(report, indent=1))
    train_s = [r["train_s"] for pairs in report["matrix"].values() for scores in pairs.values()
               for m in scores.values() for r in m.get("runs", ())]
    report["settings"] = {k: str(v) for k, v in vars(args).items()} | {
        "seconds": round(time.perf_counter() - t0), "trained_runs": len(train_s), "train_seconds": round(sum(train_s))}
    with atomic_write(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    print(f"report: {out_path} ({time.perf_counter() - t0:.0f} s; {len(train_s)} trained runs took {sum(train_s):.0f} s"
          " to train, reused ones included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
