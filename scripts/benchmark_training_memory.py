"""Peak memory of a few training steps: `revisp-tf train` in a fresh process for each row.

    python scripts/benchmark_training_memory.py                    # both tables below (hours on 2 CPU cores)
    python scripts/benchmark_training_memory.py --rows paper --batches 1,2
    python scripts/benchmark_training_memory.py --rows configs     # each shipped config at its own batch size
    python scripts/benchmark_training_memory.py --rows paper --mixed-precision   # on a GPU: fp32 and mixed rows
    python scripts/benchmark_training_memory.py --rows paper --batches 6 --data /tmp/memdata   # keeps the prepared data, reuses it

Rows:
- `paper`: training/configs/paper_s7_dual.yaml at each of --batches, with the joint step (both
  nets forward, one backward: the step before `runtime.sequential_nets`) and the sequential
  step (the default), each without and with `runtime.recompute`. The joint step is not run at
  batch 6 unless --joint-batch6: it needs about 30 GB; the issue that introduced the sequential
  step measured it killed by the kernel at 24 GB anon RSS (batch 1: 6.8 GB).
- `configs`: every shipped config at its own batch size with its defaults, the dual ones also
  with the joint step, the single-net 504/496 px ones also with recompute.

Each row runs `revisp_tf.train.train_lib.train` (the library call behind `revisp-tf train`) in a
fresh subprocess: --steps steps of the config's FIRST phase (for the paper configs the paper
losses, their heaviest phase), then the epoch's checkpoint, validation and the model save.
Reported per row:
- peak RSS: the child's resident high-water mark (os.wait4's ru_maxrss) over the whole `train`;
- RSS to the last step: the high-water mark (VmHWM) read right after the last training step,
  i.e. without the epoch's checkpoint, validation and model save;
- TF peak in the steps: TensorFlow's allocator peak on the training device from the first step
  to the last (tf.config.experimental.get_memory_info; the weights, Adam's slots, the
  activations and the losses; on a GPU this is what decides whether it fits);
- step s: seconds of the epoch's steps (the first step traces the step function).
The figures after the steps come from the trainer's step function wrapped in the child
(`train_lib.distributed_step`, the one the trainer builds its steps with).
A watchdog samples the child's RSS and kills it above --limit-gib; the row then says so.

Data: 18 real AIM 2022 S7 camera JPEGs (aim22_s7_rgb of the real-data folder, revisp_tf.realdata:
$REVISP_REALDATA or ../shared/realdata; scene 78, k = 0..17; 2 more for validation) and, for the
P20 config, 18 + 2 real P20 JPEGs. No RAW of those exists here: each RAW is the classical inverse
ISP of its JPEG (revisp_tf.isp.unprocess, default camera), mosaiced and stored in the sensor's
units (a step's memory does not depend on the RAW's values). demo.yaml
reads 48 synthetic pairs as a folder instead of generating 192 in every run. Without the
real-data folder, synthetic pairs at the paper's sizes (504 and 496 px) stand in, and the report
says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revisp_tf.realdata import realdata_dir

REPO = Path(__file__).resolve().parents[1]
REALDATA = realdata_dir()
CONFIGS = REPO / "training" / "configs"
PAPER = "paper_s7_dual.yaml"
GIB = 2**30
TRAIN_PATCHES, VAL_PATCHES = 18, 2
SYNTHETIC_PAIRS = 48
# The measurement of the joint step on this machine (2 steps, 18 real S7 patches).
JOINT_BATCH6_NOTE = "not run: killed by the kernel at 24 GB anon RSS (issue measurement; batch 1 peaked at 6.8 GB)"


# ---------------------------------------------------------------- data (runs in a child)


def _unprocessed_raw(rgb_u8, sensor):
    """Stored packed RGGB of the classical inverse ISP of an 8-bit RGB patch, in `sensor`'s units."""
    import numpy as np

    from revisp_tf.isp.unprocess import default_params, unprocess_to_bayer

    linear = unprocess_to_bayer(rgb_u8.astype(np.float32) / 255.0, default_params()).numpy()
    stored = sensor.black_level + linear * (sensor.white_level - sensor.black_level)
    return np.round(stored).astype(np.uint16)


def _real_folder(src: Path, names: list[str], out: Path, sensor) -> None:
    """Copies the camera JPEGs `names` of `src` into `out` with their inverse-ISP RAW (AIM 2022 layout)."""
    import cv2

    from revisp_tf.io.images import write_npy

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src / f"{name}.jpg", out / f"{name}.jpg")
        rgb = cv2.imread(str(src / f"{name}.jpg"), cv2.IMREAD_COLOR)[..., ::-1]
        write_npy(out / f"{name}.npy", _unprocessed_raw(rgb, sensor))


def prepare_data(root: Path) -> dict:
    """The row folders under `root` and their demosaiced ground truth; returns what each holds."""
    from revisp_tf.data.prepare_gt import prepare_gt
    from revisp_tf.data.synthetic import make_synthetic_pairs
    from revisp_tf.isp.sensor import HUAWEI_P20, PROJECT_10BIT, SAMSUNG_S7

    folders = {}
    real = REALDATA.is_dir()
    for key, sub, scene, size, sensor in (("s7", "aim22_s7_rgb", "78", 504, SAMSUNG_S7), ("p20", "aim22_p20_rgb", "12", 496, HUAWEI_P20)):
        train, val = root / key / "train", root / key / "val"
        if real:
            names = [f"{scene}_{k}" for k in range(TRAIN_PATCHES + VAL_PATCHES)]
            _real_folder(REALDATA / sub, names[:TRAIN_PATCHES], train, sensor)
            _real_folder(REALDATA / sub, names[TRAIN_PATCHES:], val, sensor)
            what = f"{TRAIN_PATCHES} + {VAL_PATCHES} real {key.upper()} JPEGs ({sub}), RAW = inverse ISP"
        else:
            make_synthetic_pairs(train, count=TRAIN_PATCHES, seed=0, patch=size)
            make_synthetic_pairs(val, count=VAL_PATCHES, seed=1, patch=size)
            sensor = PROJECT_10BIT
            what = f"{TRAIN_PATCHES} + {VAL_PATCHES} synthetic {size} px pairs (no real-data folder)"
        for d in (train, val):
            prepare_gt(d, sensor, progress=False)
        folders[key] = {"train": str(train), "val": str(val), "sensor": sensor.name, "what": what}
    synthetic = root / "synthetic"
    make_synthetic_pairs(synthetic, count=SYNTHETIC_PAIRS, seed=0, patch=128)
    prepare_gt(synthetic, PROJECT_10BIT, progress=False)
    folders["synthetic"] = {"train": str(synthetic), "val": "", "sensor": "project", "what": f"{SYNTHETIC_PAIRS} synthetic 128 px pairs"}
    return folders


# ---------------------------------------------------------------- one row (runs in a child)


def _vm_hwm_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def run_row(spec: dict) -> dict:
    """`train_lib.train` for the row's config and overrides, its step function instrumented; its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from revisp_tf.train import config as config_lib
    from revisp_tf.train import train_lib

    cfg = config_lib.load_config(CONFIGS / spec["config"], spec["overrides"])
    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    steps = {"tf_peak": 0, "rss_hwm_kib": 0, "count": 0}
    make_step = train_lib.distributed_step

    def instrumented(*args, **kwargs):
        """The trainer's step function, recording TF's allocator peak over the steps and the RSS high-water mark."""
        run = make_step(*args, **kwargs)

        def step(batch):
            if not steps["count"]:
                tf.config.experimental.reset_memory_stats(device)  # from here: the weights, the optimizer and the steps
            terms = run(batch)
            float(terms["total"])  # the step has run
            steps["count"] += 1
            steps["tf_peak"] = max(steps["tf_peak"], tf.config.experimental.get_memory_info(device)["peak"])
            steps["rss_hwm_kib"] = _vm_hwm_kib()
            return terms

        return step

    train_lib.distributed_step = instrumented
    with tempfile.TemporaryDirectory(prefix="train_memory_") as run_dir:
        result = train_lib.train(cfg, run_dir, overwrite=True, verbose=0)
    return {"step_seconds": result.history[-1]["seconds"], "steps": steps["count"], "device": device,
            "tf_step_peak_gib": steps["tf_peak"] / GIB, "rss_to_last_step_gib": steps["rss_hwm_kib"] * 1024 / GIB}


# ---------------------------------------------------------------- the parent


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (FileNotFoundError, StopIteration, ProcessLookupError):
        return 0


def watched(cmd: list[str], limit_gib: float) -> tuple[int, float, bool, str]:
    """Runs `cmd`, killing it if its RSS passes `limit_gib`; (exit status, peak RSS GiB, killed, stdout + stderr's tail)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=REPO)
        killed = False
        while True:
            # wait4: this child's own rusage (RUSAGE_CHILDREN would give the largest of all rows so far)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if not killed and _rss_kib(proc.pid) * 1024 > limit_gib * GIB:
                proc.kill()
                killed = True
            time.sleep(0.2)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read() + ("\n" + err.read()[-3000:] if code and not killed else "")
    return code, usage.ru_maxrss * 1024 / GIB, killed, text


def _phase_override(config: str) -> str:
    """The config's first phase as the only phase, one epoch."""
    import yaml

    first = yaml.safe_load((CONFIGS / config).read_text())["optim"]["phases"][0]
    return f"optim.phases=[{{epochs: 1, learning_rate: {first['learning_rate']}, loss: {first['loss']}}}]"


def _data_overrides(config: str, folders: dict) -> list[str]:
    """Points a config at the prepared folder of its kind."""
    import yaml

    data = yaml.safe_load((CONFIGS / config).read_text())["data"]
    if data.get("source") == "synthetic" or config == "camera.yaml":
        key = "synthetic" if data.get("source") == "synthetic" else "s7"
    else:
        key = "p20" if data.get("sensor") == "p20" else "s7"
    f = folders[key]
    out = ["data.source=folder", f"data.train_dir={f['train']}"] + ([f"data.val_dir={f['val']}"] if f["val"] else [])
    if config != "camera.yaml":  # camera.yaml's own units ("project") equal the S7's
        out.append(f"data.sensor={f['sensor']}")
    return out


def rows(args, folders: dict) -> list[dict]:
    """(label, config, overrides) of each requested row."""
    out = []
    precisions = (False, True) if args.mixed_precision else (False,)

    def add(config, label, extra, batch=None, note=None):
        for mixed in precisions:
            overrides = [*_data_overrides(config, folders), _phase_override(config), f"runtime.steps_per_epoch={args.steps}",
                         "runtime.checkpoint_every_steps=1000", *extra]
            if batch:
                overrides.append(f"data.batch_size={batch}")
            if mixed:
                overrides.append("runtime.mixed_precision=true")
            out.append({"config": config, "label": label + (", mixed fp16" if mixed else ""), "batch": batch,
                        "overrides": overrides, "note": note})

    def paper(batches):
        for b in batches:
            for seq in (False, True):
                for rc in (False, True):
                    label = f"{'sequential' if seq else 'joint'}{' + recompute' if rc else ''}"
                    note = JOINT_BATCH6_NOTE if (b >= 6 and not seq and not rc and not args.joint_batch6) else None
                    if b >= 6 and not seq and rc and not args.joint_batch6:
                        continue  # joint at batch 6: the measurement (about 30 GB); --joint-batch6 runs it
                    add(PAPER, label, [f"runtime.sequential_nets={str(seq).lower()}", f"runtime.recompute={str(rc).lower()}"], b, note)
    if "paper" in args.rows:
        paper([b for b in args.batches if b < 6])
    if "configs" in args.rows:
        import yaml

        for path in sorted(CONFIGS.glob("*.yaml")):
            if args.configs and path.name not in args.configs:
                continue
            model = yaml.safe_load(path.read_text())["model"]
            if path.name == PAPER and "paper" in args.rows:
                continue  # its batch-6 rows are in the paper table
            add(path.name, "defaults", [])
            if model["variant"] == "dual":
                add(path.name, "joint", ["runtime.sequential_nets=false"])
            elif model.get("base_filters", 64) >= 64:
                add(path.name, "recompute", ["runtime.recompute=true"])
    if "paper" in args.rows:
        paper([b for b in args.batches if b >= 6])  # the heaviest rows last
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="paper,configs", help="comma-separated: paper, configs")
    p.add_argument("--batches", default="1,2,6", help="paper rows: batch sizes")
    p.add_argument("--configs", default="", help="configs rows: only these config files (comma-separated names)")
    p.add_argument("--steps", type=int, default=2, help="training steps per row")
    p.add_argument("--limit-gib", type=float, default=17.0, help="kill a row whose RSS passes this")
    p.add_argument("--mixed-precision", action="store_true", help="also each row with runtime.mixed_precision (GPUs)")
    p.add_argument("--joint-batch6", action="store_true", help="also run the joint step at batch 6 (about 30 GB)")
    p.add_argument("--data", help="a folder to keep the prepared data in and reuse (default: a temporary one)")
    p.add_argument("--json", help="append each row's result to this JSON-lines file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--prepare", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.prepare:
        print(json.dumps(prepare_data(Path(args.prepare))))
        return 0
    if args.child:
        print(json.dumps(run_row(json.loads(args.child))))
        return 0
    args.rows = [r.strip() for r in args.rows.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    data_root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="train_memory_data_"))
    try:
        manifest = data_root / "folders.json"
        if manifest.is_file():  # a --data folder prepared by an earlier run
            folders = json.loads(manifest.read_text())
        else:
            code, _, _, text = watched([sys.executable, __file__, "--prepare", str(data_root)], args.limit_gib)
            if code:
                print(text, file=sys.stderr)
                return code
            folders = json.loads(text.strip().splitlines()[-1])
            manifest.write_text(json.dumps(folders))
        print(f"data: {folders['s7']['what']}; {folders['p20']['what']}; {folders['synthetic']['what']}")
        print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
              f"watchdog at {args.limit_gib:g} GiB; {args.steps} steps per row")
        print("| config | batch | step | peak RSS GiB | RSS to the last step GiB | TF peak in the steps GiB | step s |")
        print("|---|---|---|---|---|---|---|")
        for row in rows(args, folders):
            batch = row["batch"] or "own"
            if row["note"]:
                print(f"| {row['config']} | {batch} | {row['label']} | {row['note']} | | | |", flush=True)
                continue
            cmd = [sys.executable, __file__, "--child", json.dumps(row)]
            code, peak, killed, text = watched(cmd, args.limit_gib)
            if killed or code:
                result = {"error": f"killed by the watchdog above {args.limit_gib:g} GiB" if killed else f"exit {code}"}
                if not killed:
                    print(text[-2000:], file=sys.stderr)
            else:
                result = json.loads(text.strip().splitlines()[-1])
            result.update(row, peak_rss_gib=peak, load=os.getloadavg()[0])
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(result) + "\n")
            if "error" in result:
                print(f"| {row['config']} | {batch} | {row['label']} | {result['error']} (peak {peak:.2f}) | | | |", flush=True)
            else:
                print(f"| {row['config']} | {batch} | {row['label']} | {peak:.2f} | {result['rss_to_last_step_gib']:.2f} "
                      f"| {result['tf_step_peak_gib']:.2f} | {result['step_seconds']:.0f} |", flush=True)
    finally:
        if not args.data:
            shutil.rmtree(data_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
