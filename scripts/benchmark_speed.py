"""Speed of the reverse ISP on this machine: inference, FLOP rates against the matmul ceiling, training, input.

    python scripts/benchmark_speed.py            # the full run: 35-50 min on 2 CPU cores
    python scripts/benchmark_speed.py --quick    # a few minutes (see --quick below for what it cuts)
    python scripts/benchmark_speed.py --variants dual --repeats 5 --skip-tflite
    python scripts/benchmark_speed.py --frame --base-filters 32   # the full-frame savings only (--frame below)
    python scripts/benchmark_speed.py --jit --base-filters 32     # XLA on/off: tiled inference, demo training step

Prints one report. Every timing is the median of --repeats runs after one untimed warm-up run;
all rates and ratios come from this one run of the script, so they share its machine load.

- Ceiling: the fp32 rate of a 4096 x 4096 tf.linalg.matmul, timed alternately with each
  row's patch runs (median of --repeats), so both share the machine's load at that moment.
- FLOPs per 504 x 504 patch: 2 K K Cin Cout Hout Wout summed over the Conv2D ops of the
  traced model (the U-Nets pad 504 to 512), cross-checked against a closed form of the authors'
  U-Net and against tf.compat.v1.profiler's count of the whole graph.
- Inference per 504 x 504 patch at paper width (base 64), batch 1: Keras through a
  tf.function, and TFLite fp32 / fp16 / int8 (revisp_tf.export.export_tflite, static 504 input;
  int8 is full-integer) loaded and run by mobile/run_litert.py on the LiteRT interpreter
  (XNNPACK, 2 threads); seconds, GFLOP/s and the fraction of that row's matmul rate.
- Full frame: one revisp_tf.infer.tiled.TiledInference pass over a 12 MP (3024 x 4032) frame at
  paper width, run by scripts/benchmark_inference_memory.py's `child` (time, peak RSS, working
  memory); then that script's 12 MP vs 48 MP memory comparison at a small width
  (--memory-base-filters: 48 MP at paper width would take over half an hour here).
- Training images/s: the paper's dual model at base 64 with the paper losses (LPIPS-Alex,
  MS-SSIM-L1, L2; Adam) at --train-crop / --train-batch (default batch 1 at 504: the paper's
  batch 6 takes minutes a step here; scripts/benchmark_training_memory.py gives its memory),
  and the demo config exactly as configured. Random data, so only the step is timed. Same step
  as the trainer: replica_gradients (dual: the nets in turn, sequential_gradients) + apply_gradients.
- Input pipeline: the tf.data rate of scripts/benchmark_input.py and its ratio to the
  training rate of a base-32 U-Net (the data issue's "at least 5x"), and to the paper model's.

`--frame` runs only this comparison instead: a full 3024 x 4032 S7 frame (scene --frame-scene of
../shared/realdata/aim22_s7_rgb, stitched from its 48 patches; a generated frame with a blown-out
band when that is absent, and the report says so) through the dual model at --base-filters, the
ways below timed alternately, each the median of --repeats runs after a warm-up that traces
(and for XLA compiles) every tile computation:
  (a) the authors' way: both U-Nets on each of the 48 non-overlapping 504 px patches, no
      skipping, fp32 (this project's Keras model, as trained: no savings; batch 1 per patch);
  (b) revisp_tf.infer.tiled.TiledInference on the inference form (sub-pixel up convs, folded
      BatchNorm) with OE skipping, tile --frame-tile (default 768), overlap --overlap; and the same at
      infer's default tile 512 (row b512). Tiles overlap, so tiled inference runs more U-Net pixels
      than (a) (the report gives how many); at overlap 64 tile 768 needs the fewest on this frame
      (0.71 of (a)'s with skipping, against 0.77 at 512, whose 4032 px axis takes 9 tiles of 512);
  (c) each saving alone: skipping on the trained model; sub-pixel only; folding only;
  and the references: tiled with no saving, and the inference form running both nets on every
  tile ("always both", the output (b) must equal), and (b) compiled with XLA; --frame-rows picks.
It prints seconds, ratios to (a), the share of tiles that ran the OE net, the conv FLOPs of a
512 x 512 pass of the trained model and of its inference form, and max |(b) - always both|. The
model's BatchNorm statistics and head are randomised (not identities, output not clamped flat),
so folding and the output comparison are not trivial.

Heavy sections run in fresh processes (spawned) so that one section's memory never counts
against the next and each peak-memory figure is that section's own.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from revisp_tf.realdata import realdata_dir
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "mobile")]  # the sibling benchmarks, imported as modules

PATCH = 504  # AIM 2022 S7 patch
FRAME_12MP = (3024, 4032)  # Samsung S7 full frame
THREADS = 2
QUANTIZATIONS = ("fp32", "fp16", "int8")
_EXPORT_MODE = {"fp32": "none", "fp16": "fp16", "int8": "int8"}  # revisp_tf.export.convert names
QUICK = dict(
    variants="single", repeats=1, quantizations="fp32", frame_variant="single",
    frame_size="1008x1008", skip_memory=True, train_crop=256, train_steps=1,
    input_examples=12, input_runs=2, unet_steps=1,
)


# ---------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    """The SIMD extensions that matter for conv speed, as listed in /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/fma/avx512"


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def isolated(fn, *args):
    """Runs fn(*args) in a fresh spawned process; returns (its result, that process's peak RSS in bytes)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_with_peak, fn, *args).result()


def _with_peak(fn, *args):
    result = fn(*args)
    return result, peak_rss_bytes()


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---------------------------------------------------------------- ceiling and FLOPs


def matmul_runner(n: int):
    """A callable running one n x n by n x n fp32 tf.linalg.matmul (2 n^3 FLOPs) on this process's threads."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32, seed=1)
    b = tf.random.uniform((n, n), dtype=tf.float32, seed=2)
    return tf.function(lambda: tf.linalg.matmul(a, b))  # eager CPU ops return when done


def interleaved(run, matmul, n: int, repeats: int) -> tuple[float, float]:
    """(median seconds of run(), median matmul GFLOP/s), timed alternately after one warm-up of each.

    Alternating puts the ceiling and the patch under the same machine load (the machine is shared).
    """
    run()
    matmul()
    patch, product = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        matmul()
        product.append(time.perf_counter() - t)
        t = time.perf_counter()
        run()
        patch.append(time.perf_counter() - t)
    return statistics.median(patch), 2 * n**3 / statistics.median(product) / 1e9


def unet_conv_flops(height: int, width: int, in_channels: int, out_channels: int, base: int, depth: int) -> int:
    """Closed-form conv FLOPs of the authors' U-Net (unet.py) on one padded (height, width) input.

    Per level l at (H / 2^l)^2 px with f = base 2^l filters: encoder 3x3 convs cin -> f -> f;
    for l < depth also the up conv 2f -> f, and the decoder convs 2f -> f -> f; a 1x1 head.
    """
    total = 0
    cin = in_channels
    for level in range(depth + 1):
        f = base * 2**level
        px = (height >> level) * (width >> level)
        total += 9 * (cin * f + f * f) * px
        if level < depth:
            total += 9 * (2 * f * f + 2 * f * f + f * f) * px  # up conv, decoder a, decoder b
        cin = f
    total += base * out_channels * height * width  # 1x1 head
    return 2 * total


def traced_graph(model, size: int):
    """The graph of `model` on one (1, size, size, 3) input, traced through a tf.function."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    return fn.get_concrete_function(tf.TensorSpec((1, size, size, 3), tf.float32)).graph


def graph_conv_flops(graph) -> int:
    """2 K K Cin Cout Hout Wout (batch included) summed over the Conv2D ops of a traced graph."""
    total = 0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            total += 2 * kh * kw * cin * int(np.prod(op.outputs[0].shape.as_list()))
    return total


def profiler_flops(graph) -> int:
    """tf.compat.v1.profiler's float-operation count of a whole graph (convs, BatchNorm, ReLU, ...)."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def flop_counts(variant: str, base: int, depth: int, size: int) -> dict:
    """FLOPs of one forward pass of the variant at size x size: traced convs, closed form, profiler."""
    from revisp_tf.models import build_reverse_isp

    model = build_reverse_isp(variant, base, depth)
    graph = traced_graph(model, size)
    padded = -(-size // 2**depth) * 2**depth
    nets, cin, cout = {"baseline": (1, 3, 4), "single": (1, 4, 3), "dual": (2, 4, 3)}[variant]
    return {
        "conv": graph_conv_flops(graph),
        "closed_form": nets * unet_conv_flops(padded, padded, cin, cout, base, depth),
        "profiler": profiler_flops(graph),
    }


# ---------------------------------------------------------------- inference per patch


def sample_rgb(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Uniform random RGB in [0, 1] with a clipped corner, so the overexposure mask is not empty."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, height, width, 3), dtype=np.float32)
    x[:, : height // 4, : width // 4] = 1.0
    return x


def keras_runner(model):
    """A callable running one 504 x 504 patch through `model` in a tf.function (batch 1)."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, PATCH, PATCH, 3))])
    x = tf.constant(sample_rgb(1, PATCH, PATCH))
    return lambda: fn(x).numpy()


def tflite_runner(model, quantize: str, out_dir: Path):
    """(callable running one 504 x 504 patch on LiteRT with XNNPACK and 2 threads, the export's report).

    Exported by revisp_tf.export.export_tflite with a static 504 input, loaded and run by
    mobile/run_litert.py (as mobile/benchmark_litert.py times it). int8 is calibrated on two
    images: enough for timing, not for quality.
    """
    import run_litert

    from revisp_tf.export.calibration import calibration_images
    from revisp_tf.export.convert import export_tflite

    images = calibration_images((PATCH, PATCH), count=2)
    report = export_tflite(
        model, out_dir / f"{model.name}_{quantize}.tflite", quantize=_EXPORT_MODE[quantize], size=(PATCH, PATCH),
        representative_data=images, check_data=images[:1], num_threads=THREADS,
    )
    interpreter = run_litert.load(report.path, THREADS)
    rgb = sample_rgb(1, PATCH, PATCH)[0]
    return (lambda: run_litert.run(interpreter, rgb)), report


def inference_section(variants, base: int, depth: int, repeats: int, matmul_n: int, quantizations) -> dict:
    """{(variant, engine): {seconds, matmul GFLOP/s[, file MB, max abs error vs Keras]}}, all in this process."""
    from revisp_tf.models import build_reverse_isp

    matmul = matmul_runner(matmul_n)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            model = build_reverse_isp(variant, base, depth)
            runners = {"Keras tf.function": (keras_runner(model), None)}
            runners.update({f"TFLite {q}": tflite_runner(model, q, Path(tmp)) for q in quantizations})
            for engine, (run, report) in runners.items():
                seconds, gflops = interleaved(run, matmul, matmul_n, repeats)
                figures = {"seconds": seconds, "matmul": gflops}
                if report is not None:
                    figures.update(megabytes=report.size_bytes / 1e6, max_abs_error=report.max_abs_error)
                result[(variant, engine)] = figures
                print(f"  {variant} {engine}: {seconds:.2f} s (matmul {gflops:.1f} GFLOP/s)", flush=True)
    return result


# ---------------------------------------------------------------- full frame


def frame_figures(variant: str, base: int, depth: int, height: int, width: int, tile: int, overlap: int) -> dict:
    """One infer_tiled pass over a full frame, by scripts/benchmark_inference_memory.py's `child`:
    seconds (first tile includes tracing), peak RSS and working memory; plus the tile count."""
    import benchmark_inference_memory

    from revisp_tf.infer.tiling import tile_starts

    args = argparse.Namespace(
        child=(height, width), variant=variant, base_filters=base, depth=depth, tile=tile, overlap=overlap, batch_size=1,
        format="npy",
    )
    figures = benchmark_inference_memory.child(args)
    align = 2**depth  # the U-Nets' pooling grid, as infer_tiled aligns tiles
    rows, cols = (len(tile_starts(n, tile, overlap, align)[0]) for n in (height, width))
    figures["tiles"] = rows * cols
    return figures


def memory_comparison(variant: str, base: int, tile: int, overlap: int) -> tuple:
    """Runs scripts/benchmark_inference_memory.py (12 MP vs 48 MP, each in its own process); (name, value, met)."""
    import subprocess

    cmd = [sys.executable, str(REPO / "scripts" / "benchmark_inference_memory.py"), "--variant", variant,
           "--base-filters", str(base), "--tile", str(tile), "--overlap", str(overlap), "--sizes", "12,48"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(proc.stdout.rstrip(), flush=True)
    name = "full-frame working memory 48 vs 12 MP within 10%"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("working memory")]
    if not lines:
        print(proc.stderr[-2000:])
        return (name, "failed", False)
    return (name, lines[0].split(":", 1)[1].split()[0], proc.returncode == 0)


# ---------------------------------------------------------------- full frame, savings (--frame)


def frame_rgb(scene: str) -> tuple[np.ndarray, str]:
    """(3024 x 4032 S7 frame, what it is): scene `scene` stitched from the real AIM 2022 patches, or generated."""
    import benchmark_inference_memory

    from revisp_tf.infer.aim22 import group_patch_files, stitch_patches

    folder = realdata_dir() / "aim22_s7_rgb"
    paths = sorted(folder.glob(f"{scene}_*.jpg"))
    if paths:
        return stitch_patches(group_patch_files(paths)[scene]), f"real S7 scene {scene} ({folder})"
    rgb = benchmark_inference_memory.frame(*FRAME_12MP).astype(np.float32) / 255
    return rgb, f"GENERATED frame with a blown-out band ({folder} is absent)"


def randomised_dual(base: int, depth: int, seed: int = 0):
    """The dual model with random BatchNorm statistics and a head centred on 0.5 (see the module docstring)."""
    import keras

    from revisp_tf.models import build_reverse_isp

    keras.utils.set_random_seed(seed)
    model = build_reverse_isp("dual", base, depth)
    rng = np.random.default_rng(seed)
    for unet in (model.get_layer("unet_oe"), model.get_layer("unet_noe")):
        for layer in unet.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                c = layer.gamma.shape[0]
                layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                                   rng.uniform(0.5, 2, c)])
        head = unet.get_layer("head")
        kernel, bias = head.get_weights()
        head.set_weights([rng.normal(0, 3 / np.sqrt(kernel.shape[2]), kernel.shape), np.full_like(bias, 0.5)])
    return model


def authors_way(model):
    """(a): both U-Nets on each of the 48 non-overlapping AIM patches, batch 1, no savings; returns a runner."""
    import tensorflow as tf

    from revisp_tf.infer.aim22 import stitch_patches, unstitch

    fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, None, None, 3))])

    def run(rgb):
        return stitch_patches([fn(p[None]).numpy()[0] for p in unstitch(rgb)])

    return run, lambda rgb: fn(unstitch(rgb)[0][None])


# --frame rows: key -> (label, how the model is prepared, skip the OE net, XLA, tile or None for
# --frame-tile); "a" is the authors' way.
FRAME_ROWS = {
    "a": ("(a) authors' way", None, None, None, None),
    "b": ("(b) every saving", dict(), True, False, None),
    "b512": ("(b) at tile 512 (infer's default)", dict(), True, False, 512),
    "skip": ("(c) skipping only", None, True, False, None),
    "subpixel": ("(c) sub-pixel only", dict(fold_batchnorm_layers=False), False, False, None),
    "fold": ("(c) folding only", dict(subpixel=False), False, False, None),
    "tiled": ("tiled, no saving", None, False, False, None),
    "both": ("always both (b, no skipping)", dict(), False, False, None),
    "xla": ("(b) + XLA", dict(), True, True, None),
}


def frame_savings(base: int, depth: int, scene: str, tile: int, overlap: int, repeats: int, rows) -> dict:
    """The --frame comparison in this process: {row label: seconds}, plus the tile plan, FLOPs and output differences."""
    from revisp_tf.infer.tiled import TiledInference
    from revisp_tf.models.inference_form import conv_flops, inference_form

    rgb, what = frame_rgb(scene)
    model = randomised_dual(base, depth)
    form = inference_form(model)
    plans = {t: TiledInference(form).plan(rgb, t, overlap) for t in {tile, 512}}
    plans[tile]
    runs, warm = {}, {}
    for key in rows:
        label, options, skip, xla, row_tile = FRAME_ROWS[key]
        if key == "a":
            runs[key], warm[key] = authors_way(model)
            continue
        runner = TiledInference(model if options is None else inference_form(model, **options), skip_oe=skip,
                                jit_compile=xla)
        t = row_tile or tile
        runs[key] = lambda rgb, r=runner, t=t: r(rgb, t, overlap)
        warm[key] = lambda rgb, r=runner, t=t: r.warm_up(plans[t].th, plans[t].tw)
    for key in rows:
        warm[key](rgb)
    times = {key: [] for key in rows}
    cpu = {key: [] for key in rows}
    outputs = {}
    for _ in range(repeats):
        for key, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            outputs[key] = run(rgb)
            times[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
        print("  " + ", ".join(f"{key} {t[-1]:.0f} s ({cpu[key][-1]:.0f} s CPU)" for key, t in times.items())
              + f"; load {os.getloadavg()[0]:.1f}", flush=True)
    diff = lambda k, ref: float(np.abs(outputs[k] - outputs[ref]).max()) if {k, ref} <= set(outputs) else None  # noqa: E731
    return {
        "what": what,
        "seconds": {FRAME_ROWS[key][0]: statistics.median(t) for key, t in times.items()},
        "cpu_seconds": {FRAME_ROWS[key][0]: statistics.median(t) for key, t in cpu.items()},
        "plans": {t: (p.tiles, p.tiles - p.count("noe"), p.count("both"), (p.th, p.tw)) for t, p in sorted(plans.items())},
        "flops_512": (conv_flops(model, 512, 512), conv_flops(form, 512, 512)),
        "max_diff_always_both": diff("b", "both"),
        "max_diff_xla": diff("xla", "b"),
        "max_diff_authors": diff("b", "a"),
    }


def frame_report(args) -> None:
    """Prints the --frame comparison (run in a fresh process)."""
    print(f"\nfull frame, dual at base {args.base_filters} depth {args.depth}, tile {args.frame_tile} overlap "
          f"{args.overlap}, median of {args.repeats} ...", flush=True)
    r, peak = isolated(frame_savings, args.base_filters, args.depth, args.frame_scene, args.frame_tile, args.overlap,
                       args.repeats, args.frame_rows)
    sec, cpu = r["seconds"], r["cpu_seconds"]
    authors, authors_cpu = sec.get(FRAME_ROWS["a"][0]), cpu.get(FRAME_ROWS["a"][0])
    print(f"frame: {r['what']}")
    for t, (tiles, oe_tiles, both, (th, tw)) in r["plans"].items():
        work = (tiles + both) * th * tw / (2 * 48 * 512 * 512)  # a tile of kind "both" runs two U-Nets
        print(f"tile {t}: {tiles} tiles of {th}x{tw}; ran the OE net on {oe_tiles} ({oe_tiles / tiles:.0%}); "
              f"U-Net pixels {work:.3f} of (a)'s (48 patches padded to 512, x 2 nets)")
    original, form = r["flops_512"]
    print(f"conv FLOPs per 512x512 pass: trained model {original / 1e9:.1f} G, inference form {form / 1e9:.1f} G "
          f"({original / form:.2f}x fewer)")
    print(f"\n{'':<36}{'wall s':>9}{'(a) / row':>11}{'CPU s':>9}{'(a) / row':>11}")
    for name, seconds in sec.items():
        ratios = (f"{authors / seconds:10.2f}x", f"{authors_cpu / cpu[name]:10.2f}x") if authors else ("", "")
        print(f"{name:<36}{seconds:9.1f}{ratios[0]}{cpu[name]:9.1f}{ratios[1]}")
    print("(CPU s: the process's CPU time, all threads; on a shared machine it follows the work done far more "
          "closely than wall time)")
    if r["max_diff_always_both"] is not None:
        print(f"\nmax |(b) - always both| = {r['max_diff_always_both']:.2e} (must be <= 1e-5)")
    if r["max_diff_xla"] is not None:
        print(f"max |(b) + XLA - (b)| = {r['max_diff_xla']:.2e}")
    if r["max_diff_authors"] is not None:
        print(f"max |(b) - (a)| = {r['max_diff_authors']:.3f} (not equal by design: (a) has patch seams, (b) blends tiles)")
    print(f"peak RSS of the comparison process: {gib(peak)}")
    print("\ntargets (benchmarks, measured in this run):")
    if authors and FRAME_ROWS["b"][0] in sec:
        ratio = authors / sec[FRAME_ROWS["b"][0]]
        print(f"  {'(b) >= 1.5x faster than (a), wall time':<48}{ratio:>9.2f}x  {verdict(ratio >= 1.5)}")
        ratio = authors_cpu / cpu[FRAME_ROWS["b"][0]]
        print(f"  {'(b) >= 1.5x less CPU time than (a)':<48}{ratio:>9.2f}x  {verdict(ratio >= 1.5)}")
    if r["max_diff_always_both"] is not None:
        ok = r["max_diff_always_both"] <= 1e-5
        print(f"  {'(b) equals always-both within 1e-5':<48}{r['max_diff_always_both']:>10.1e}  {verdict(ok)}")


# ---------------------------------------------------------------- training


def sample_batch(batch: int, crop: int, seed: int = 0) -> dict:
    """A training batch with the pipeline's keys: rgb, demosaiced (full resolution) and its packed raw."""
    from revisp_tf.isp.bayer import mosaic

    rgb = sample_rgb(batch, crop, crop, seed)
    demosaiced = np.random.default_rng(seed + 1).random((batch, crop, crop, 3), dtype=np.float32)
    return {"rgb": rgb, "demosaiced": demosaiced, "raw": mosaic(demosaiced).numpy()}


def training_images_per_second(config_path: str, overrides: tuple, steps: int, jit_compile: bool = False) -> dict:
    """Median images/s of the trainer's step (first phase's loss) for a config, after one warm-up step.

    The step is the trainer's (replica_gradients, or for dual sequential_gradients, + apply_gradients
    in a tf.function) without the one-device strategy wrapper, on random data of the pipeline's shapes.
    """
    import keras
    import tensorflow as tf

    from revisp_tf.models import build_reverse_isp, training_model
    from revisp_tf.train.config import load_config
    from revisp_tf.train.objectives import build_objective, needs_lpips, net_objectives
    from revisp_tf.train.sequential import net_branches, sequential_gradients
    from revisp_tf.train.trainer import replica_gradients

    cfg = load_config(REPO / config_path, overrides)
    m, phase = cfg.model, cfg.optim.phases[0]
    keras.utils.set_random_seed(cfg.runtime.seed)
    model = build_reverse_isp(m.variant, m.base_filters, m.depth, m.mask_threshold, m.mask_rule)
    train_model = training_model(model)
    optimizer = keras.optimizers.Adam(phase.learning_rate, weight_decay=cfg.optim.weight_decay or None)
    optimizer.build(train_model.trainable_variables)
    lpips_fn = None
    if needs_lpips(cfg) and phase.loss == "paper":
        from revisp_tf.losses.lpips import LPIPSAlex

        lpips_fn = LPIPSAlex(name="lpips")
    objective = build_objective(cfg, phase.loss, lpips_fn)
    nets = net_objectives(cfg, phase.loss, lpips_fn) if cfg.runtime.sequential_nets else None
    branches = net_branches(train_model, nets) if nets else None
    batch_size = cfg.data.batch_size

    @tf.function(jit_compile=jit_compile)
    def step(batch):
        if nets:  # the dual nets in turn, as the trainer steps them by default
            terms, grads = sequential_gradients(train_model, branches, nets, batch, batch_size)
        else:
            terms, grads = replica_gradients(train_model, objective, batch, batch_size)
        optimizer.apply_gradients(zip(grads, train_model.trainable_variables))
        return terms["total"]

    batch = {k: tf.constant(v) for k, v in sample_batch(batch_size, cfg.data.crop).items()}
    seconds = median_seconds(lambda: step(batch).numpy(), steps)
    return {
        "images_per_s": batch_size / seconds,
        "seconds_per_step": seconds,
        "what": f"{m.variant} base {m.base_filters}, {phase.loss} loss, batch {batch_size} at {cfg.data.crop}^2",
    }


def jit_timings(base: int, depth: int, scene: str, repeats: int) -> dict:
    """--jit: XLA on and off, timed alternately in this process (median of `repeats` after warm-up/compile).

    Inference: TiledInference on the dual inference form at `base` over a 1008 x 1344 crop of the
    frame (tile 512, overlap 64: 9 tiles), every saving on, jit_compile True / False. Training:
    the demo config's first-phase step (training/configs/demo.yaml), jit_compile True / False.
    """
    import keras

    from revisp_tf.infer.tiled import TiledInference
    from revisp_tf.models.inference_form import inference_form

    rgb = frame_rgb(scene)[0][1008:2016, 1344:2688]
    form = inference_form(randomised_dual(base, depth))
    runners = {jit: TiledInference(form, jit_compile=jit) for jit in (False, True)}
    plan = runners[False].plan(rgb, 512, 64)
    start = time.perf_counter()
    runners[True].warm_up(plan.th, plan.tw)
    compile_s = time.perf_counter() - start
    runners[False].warm_up(plan.th, plan.tw)
    infer = {False: [], True: []}
    outputs = {}
    for _ in range(repeats):
        for jit, runner in runners.items():
            t = time.perf_counter()
            outputs[jit] = runner(rgb, 512, 64)
            infer[jit].append(time.perf_counter() - t)
    train = {}
    for jit in (False, True):
        keras.backend.clear_session()
        train[jit] = training_images_per_second("training/configs/demo.yaml", (), repeats, jit_compile=jit)
    return {
        "infer": {jit: statistics.median(t) for jit, t in infer.items()},
        "compile_s": compile_s,
        "tiles": plan.tiles,
        "oe_tiles": plan.tiles - plan.count("noe"),
        "max_diff": float(np.abs(outputs[True] - outputs[False]).max()),
        "train": {jit: r["seconds_per_step"] for jit, r in train.items()},
        "train_what": train[False]["what"],
        "load": os.getloadavg()[0],
    }


def jit_report(args) -> None:
    """Prints the --jit comparison (run in a fresh process)."""
    print(f"\nXLA (jit_compile) on and off, dual inference form at base {args.base_filters}; demo training step ...",
          flush=True)
    r, _ = isolated(jit_timings, args.base_filters, args.depth, args.frame_scene, args.repeats)
    off, on = r["infer"][False], r["infer"][True]
    print(f"inference, 1008x1344 crop of the S7 frame, tile 512 overlap 64 ({r['tiles']} tiles, "
          f"{r['oe_tiles']} with the OE net): plain {off:.2f} s, XLA {on:.2f} s (plain / XLA {off / on:.2f}x; "
          f"XLA compile {r['compile_s']:.1f} s); max |XLA - plain| = {r['max_diff']:.1e}")
    off, on = r["train"][False], r["train"][True]
    print(f"training step ({r['train_what']}): plain {off:.3f} s, XLA {on:.3f} s (plain / XLA {off / on:.2f}x)")
    print(f"load average after: {r['load']:.2f}")


# ---------------------------------------------------------------- input pipeline


def input_pipeline_rates(examples: int, runs: int, batches: int, unet_steps: int) -> dict:
    """tf.data images/s (S7 setting, 504 crops of 504 patches) and the base-32 U-Net training images/s."""
    import benchmark_input

    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.isp.sensor import SAMSUNG_S7

    with tempfile.TemporaryDirectory() as tmp:
        benchmark_input.write_dataset(Path(tmp), examples, PATCH)
        pairs = scan_pairs(Path(tmp), sensor=SAMSUNG_S7)
        pipeline = benchmark_input.pipeline_rate(pairs, "transpose", runs, batches)
    return {"pipeline": pipeline, "unet32_train": benchmark_input.unet_training_rate(unet_steps)}


# ---------------------------------------------------------------- report


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="single,dual", help="comma-separated: baseline, single, dual")
    parser.add_argument("--base-filters", type=int, default=64, help="U-Net width (64 = the paper's)")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per inference figure (median)")
    parser.add_argument("--matmul-n", type=int, default=4096)
    parser.add_argument("--skip-tflite", action="store_true")
    parser.add_argument("--quantizations", default=",".join(QUANTIZATIONS), help="TFLite modes: fp32, fp16, int8")
    parser.add_argument("--frame-variant", default="dual", help="variant run on the full frame; 'none' skips it")
    parser.add_argument("--frame-size", default=f"{FRAME_12MP[0]}x{FRAME_12MP[1]}", help="HxW of the full frame")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--skip-memory", action="store_true", help="skip the 12 MP vs 48 MP peak-memory comparison")
    parser.add_argument("--memory-base-filters", type=int, default=8,
                        help="U-Net width of the 12 vs 48 MP memory runs (48 MP at 64 takes over half an hour)")
    parser.add_argument("--train-crop", type=int, default=504, help="crop of the paper-model training measurement")
    parser.add_argument("--train-batch", type=int, default=1, help="batch of the paper-model training measurement")
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps (median)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--input-examples", type=int, default=36)
    parser.add_argument("--input-runs", type=int, default=5)
    parser.add_argument("--unet-steps", type=int, default=3, help="timed base-32 U-Net steps (batch 6 at 504)")
    parser.add_argument("--skip-input", action="store_true")
    parser.add_argument("--frame", action="store_true", help="run only the full-frame savings comparison (see above)")
    parser.add_argument("--jit", action="store_true", help="run only the XLA on/off timings (jit_timings)")
    parser.add_argument("--frame-scene", default="78", help="--frame: the S7 scene stitched (78: 7.5 %% overexposed)")
    parser.add_argument("--frame-tile", type=int, default=768,
                        help="--frame: tile of the tiled rows (768 px at overlap 64 tiles the 12 MP frame with the "
                             "fewest U-Net pixels; infer's default 512 is row b512)")
    parser.add_argument("--frame-rows", default="a,b,b512,skip,subpixel,fold,tiled,both,xla",
                        help=f"--frame: which rows, from {','.join(FRAME_ROWS)}")
    parser.add_argument(
        "--quick", action="store_true",
        help="a few minutes: " + " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
                                          for k, v in QUICK.items()),
    )
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)  # explicit options still win
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in args.variants:
        if v not in ("baseline", "single", "dual"):
            parser.error(f"--variants: {v!r} is not one of baseline, single, dual")
    args.frame_rows = [k.strip() for k in args.frame_rows.split(",") if k.strip()]
    for k in args.frame_rows:
        if k not in FRAME_ROWS:
            parser.error(f"--frame-rows: {k!r} is not one of {', '.join(FRAME_ROWS)}")
    args.quantizations = [] if args.skip_tflite else [q.strip() for q in args.quantizations.split(",") if q.strip()]
    for q in args.quantizations:
        if q not in QUANTIZATIONS:
            parser.error(f"--quantizations: {q!r} is not one of {', '.join(QUANTIZATIONS)}")
    try:
        args.frame_hw = tuple(int(s) for s in args.frame_size.lower().split("x"))
    except ValueError:
        parser.error(f"--frame-size: expected HxW such as 3024x4032, got {args.frame_size!r}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    targets = []
    print(f"revisp-tf speed benchmark, {time.strftime('%Y-%m-%d %H:%M')}{'  (--quick)' if args.quick else ''}")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores ({cpu_flags()}), Python {platform.python_version()}")
    print("accelerator: none (no GPU was available to this task): every figure is CPU")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"U-Nets at base {args.base_filters}, depth {args.depth}; each timing is the median of {args.repeats} runs")
    if args.jit:
        jit_report(args)
        print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    if args.frame:
        frame_report(args)
        print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return

    flops = {v: isolated(flop_counts, v, args.base_filters, args.depth, PATCH)[0] for v in args.variants}
    for v, f in flops.items():
        print(
            f"FLOPs per {PATCH}x{PATCH} patch, {v}: {f['conv'] / 1e9:.1f} G in the Conv2D ops "
            f"(closed form {f['closed_form'] / 1e9:.1f} G; profiler, whole graph {f['profiler'] / 1e9:.1f} G)",
            flush=True,
        )

    print("\ninference per patch ...", flush=True)
    inf, _ = isolated(
        inference_section, args.variants, args.base_filters, args.depth, args.repeats, args.matmul_n, args.quantizations
    )
    print(
        f"\n{'per 504x504 patch, batch 1':<28}{'s':>8}{'GFLOP/s':>10}{'matmul':>9}{'of matmul':>11}"
        f"{'file MB':>9}{'vs Keras':>10}"
    )
    for (v, engine), fig in inf.items():
        rate = flops[v]["conv"] / fig["seconds"] / 1e9
        share = rate / fig["matmul"]
        extra = f"{fig['megabytes']:9.0f}{fig['max_abs_error']:10.1e}" if "megabytes" in fig else ""
        print(f"{v + ' ' + engine:<28}{fig['seconds']:8.2f}{rate:10.1f}{fig['matmul']:9.1f}{share:10.0%} {extra}")
        if args.base_filters == 64 and engine in ("Keras tf.function", "TFLite fp32"):
            targets.append((f"{v} {engine} >= 90% of matmul", f"{share:.0%}", share >= 0.9))
    print(f"(matmul: fp32 {args.matmul_n}^2 tf.linalg.matmul GFLOP/s, timed alternately with that row's patch; "
          "GFLOP/s counts the Conv2D FLOPs above)")
    if args.quantizations:
        print("(int8 rows: integer operations per second; 'vs Keras': max abs difference of the export's check)")

    if args.frame_variant != "none":
        h, w = args.frame_hw
        print(f"\nfull frame {h}x{w} ({h * w / 1e6:.1f} MP), {args.frame_variant} ...", flush=True)
        fr, _ = isolated(
            frame_figures, args.frame_variant, args.base_filters, args.depth, h, w, args.tile, args.overlap
        )
        print(
            f"full frame {h}x{w}, {args.frame_variant} base {args.base_filters}, Keras infer_tiled, tile {args.tile} "
            f"overlap {args.overlap} ({fr['tiles']} tiles): {fr['seconds']:.1f} s "
            f"({fr['seconds'] / fr['tiles']:.2f} s/tile), "
            f"peak RSS {fr['peak_rss_mib'] / 1024:.2f} GiB, working memory {fr['working_mib'] / 1024:.2f} GiB"
        )
    if not args.skip_memory:
        print(f"\npeak memory, 12 MP vs 48 MP, at base {args.memory_base_filters} "
              "(scripts/benchmark_inference_memory.py) ...", flush=True)
        variant = args.frame_variant if args.frame_variant != "none" else args.variants[-1]
        targets.append(memory_comparison(variant, args.memory_base_filters, args.tile, args.overlap))

    if not args.skip_training:
        print("\ntraining (random data, the trainer's step; paper_s7_dual.yaml itself trains batch 6 at 504^2) ...",
              flush=True)
        runs = {
            "paper S7 dual": ("training/configs/paper_s7_dual.yaml",
                              (f"data.crop={args.train_crop}", f"data.batch_size={args.train_batch}")),
            "demo": ("training/configs/demo.yaml", ()),
        }
        train = {}
        for label, (path, overrides) in runs.items():
            train[label], peak = isolated(training_images_per_second, path, overrides, args.train_steps)
            tr = train[label]
            print(
                f"training, {label} ({tr['what']}): {tr['images_per_s']:.4g} images/s "
                f"({tr['seconds_per_step']:.2f} s/step), process peak memory {gib(peak)}",
                flush=True,
            )

    if not args.skip_input:
        print("\ninput pipeline (scripts/benchmark_input.py) ...", flush=True)
        rates, _ = isolated(input_pipeline_rates, args.input_examples, args.input_runs, 8, args.unet_steps)
        ratio = rates["pipeline"] / rates["unet32_train"]
        print(f"tf.data, 504 crops of 504 patches (augment transpose), batch 6: {rates['pipeline']:.1f} images/s")
        print(f"U-Net base 32 training, batch 6 at 504: {rates['unet32_train']:.3f} images/s")
        print(f"pipeline / base-32 U-Net training: {ratio:.0f}x")
        targets.append(("tf.data >= 5x base-32 U-Net training", f"{ratio:.0f}x", ratio >= 5))
        if not args.skip_training and args.train_crop == PATCH:
            paper_rate = train["paper S7 dual"]["images_per_s"]
            print(f"pipeline / paper S7 dual training: {rates['pipeline'] / paper_rate:.0f}x")

    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if targets:
        print("\ntargets (benchmarks, measured in this run):")
        for name, value, ok in targets:
            print(f"  {name:<48}{value:>10}  {verdict(ok)}")


if __name__ == "__main__":
    main()
