"""Training on NVIDIA GPUs, checked against the CPU and timed; `--dry-run` runs the same code on CPU devices.

    python scripts/gpu_check.py                  # a machine with NVIDIA GPUs: paper width, batch 6 at 504 px timed
    python scripts/gpu_check.py --batch 4        # another timed batch per GPU
    python scripts/gpu_check.py --dry-run        # no GPU: width 4, depth 2, 64 px, 2 logical CPUs as the devices (CI)

The dry run runs the checks of section 1 on two logical CPUs (the device under test is the
second) and times the steps it traced there (SGD, the check's sizes) for sections 2 and 3; its
timings and memory mean nothing. A checked line ends in OK or FAIL; the exit status is 1 on any FAIL.

1. Agreement. From the same weights and the same batch (--check-batch crops per device of
   --check-crop px of real S7 JPEGs, aim22_s7_rgb scene 78 of the real-data folder, with overexposed
   skies; random images when that is absent), one step of the trainer's own step function
   (`trainer.distributed_step`: the dual nets in turn, the paper loss MS-SSIM-L1 + LPIPS + L2)
   with plain SGD at learning rate 1, so that the change of the weights IS the gradient, in
     fp32             on the GPU, TensorFloat-32 off (TF turns it on by default on Ampere and later);
     fp32 + XLA       the step compiled (runtime.jit_compile);
     mixed            mixed_float16 and a LossScaleOptimizer (runtime.mixed_precision); a step whose
                      float16 gradients overflow is skipped and the loss scale halved, as in
                      training, and the step is run again until one applies;
     fp32 Mirrored    MirroredStrategy over all GPUs, the batch split between them;
   against the same step on the CPU in fp32. Figures: the loss's relative difference and the
   gradient's relative L2 error ||g - g_cpu|| / ||g_cpu|| over all variables. A U-Net's gradient
   is a sum with heavy cancellation (BatchNorm removes each channel's mean and scale), so the same
   sum in another order moves it far more than float32's eps: the run measures that spread on the
   CPU (the batch's examples reversed) and allows fp32, XLA and Mirrored max(1e-2, 3 x spread),
   mixed max(1e-1, 10 x spread); losses 1e-4 (mixed 1e-2). A missing or wrong term is off by O(1).
   Measured on a 2-core CPU with real S7 crops: the spread is 3.1e-3 and 2.4e-2 (width 4, batch 2
   and 4 at 64 px), 4.0e-2 and 2.7e-2 (paper width, batch 2 at 128 and 256 px); XLA against
   plain TF 3.7e-3 to 2.1e-2, Mirrored on 2 logical CPUs 3.0e-3 to 9.1e-3, mixed (float16 on the
   CPU) 4.3e-2 to 5.1e-2.
2. Speed and memory at the paper's batch (--batch x --crop, paper width): steps/s of the trainer's
   step as trained (Adam) in fp32, mixed and fp32 + XLA, median of --repeats after a traced
   warm-up, and the GPU allocator's peak (tf.config.experimental.get_memory_info) of each; the
   inference of one --crop px patch (batch 1) in fp32 and mixed, ms.
3. MirroredStrategy over all GPUs: steps/s of the trainer's step (Adam) at --batch per GPU.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from benchmark_training_step import sample_batch  # noqa: E402

GIB = 2**30
# Against CPU fp32: (loss relative difference, gradient relative L2 floor, times the CPU's own rounding spread).
TOLERANCES = {"fp32": (1e-4, 1e-2, 3.0), "mixed": (1e-2, 1e-1, 10.0)}
PAPER = {"base_filters": 64, "depth": 4}
DRY = {"base_filters": 4, "depth": 2}
MAX_SKIPPED = 24  # halvings of the loss scale a mixed-precision check may need (2**15 down to 2**-9)


def _config(width: dict, batch: int, crop: int, mixed: bool = False, jit: bool = False):
    from revisp_tf.train.config import load_config

    return load_config(REPO / "training" / "configs" / "paper_s7_dual.yaml", [
        f"model.base_filters={width['base_filters']}", f"model.depth={width['depth']}", f"data.batch_size={batch}",
        f"data.crop={crop}", f"runtime.mixed_precision={str(mixed).lower()}", f"runtime.jit_compile={str(jit).lower()}"])


class Setup:
    """A model and the trainer's step function for it, built in `strategy`'s scope (paper phase).

    `sgd=True`: plain SGD at learning rate 1 (in a LossScaleOptimizer for mixed precision), so that
    one step changes the weights by minus the gradient; otherwise the config's optimizer (Adam).
    """

    def __init__(self, cfg, strategy, weights=None, device: str | None = None, sgd: bool = False):
        import keras

        from revisp_tf.losses.lpips import LPIPSAlex
        from revisp_tf.models import training_model
        from revisp_tf.train.objectives import build_objective, net_objectives
        from revisp_tf.train.train_lib import build_model
        from revisp_tf.train.trainer import distributed_step, make_optimizer

        mixed = cfg.runtime.mixed_precision
        keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
        keras.utils.set_random_seed(0)
        self.cfg, self.strategy, self.device = cfg, strategy, device
        with strategy.scope():
            self.model = build_model(cfg)
            if weights is not None:
                self.model.set_weights(weights)
            self.train_model = training_model(self.model)
            if sgd:
                self.optimizer = keras.optimizers.SGD(1.0)
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer) if mixed else self.optimizer
            else:
                self.optimizer = make_optimizer(cfg)
            self.optimizer.build(self.train_model.trainable_variables)
            lpips = LPIPSAlex(name="lpips")
        objective, nets = build_objective(cfg, "paper", lpips), net_objectives(cfg, "paper", lpips)
        self._step = distributed_step(strategy, self.train_model, self.optimizer, objective, cfg.data.batch_size,
                                      mixed, cfg.runtime.jit_compile, nets)
        keras.mixed_precision.set_global_policy("float32")

    def step(self, data):
        """One training step on a distributed batch; the loss (a float)."""
        import tensorflow as tf

        with tf.device(self.device):  # an XLA function runs where its variables live
            return float(self._step(data)["total"])

    def gradient(self, batch) -> tuple[float, list]:
        """(loss, gradient) of one SGD step from the current weights (which it then restores)."""
        import numpy as np

        variables = self.train_model.trainable_variables
        start = [v.numpy() for v in variables]
        stats = [v.numpy() for v in self.model.non_trainable_weights]
        data = _distributed(self.strategy, batch)
        for _ in range(MAX_SKIPPED):
            loss = self.step(data)
            grads = [a - v.numpy() for a, v in zip(start, variables)]  # learning rate 1
            if any(np.any(g) for g in grads):
                break  # a mixed-precision step with overflowing float16 gradients changes nothing
        else:
            raise RuntimeError("no training step applied: every loss scale overflowed")
        for v, a in zip(variables, start):
            v.assign(a)
        for v, a in zip(self.model.non_trainable_weights, stats):
            v.assign(a)
        return loss, grads

    def loss_scale(self) -> str:
        return f", loss scale {float(self.optimizer.dynamic_scale.numpy()):g}" if self.cfg.runtime.mixed_precision else ""


def _distributed(strategy, batch: dict):
    import tensorflow as tf

    return next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch))))


def _relative_l2(got, want) -> float:
    import numpy as np

    num = sum(float(np.sum((np.asarray(a, np.float64) - b) ** 2)) for a, b in zip(got, want))
    return (num / sum(float(np.sum(np.asarray(b, np.float64) ** 2)) for b in want)) ** 0.5


def _median_seconds(fn, repeats: int) -> float:
    fn()  # traces (and for XLA compiles), unless that was done already
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _stats_name(device: str) -> str:
    """"/gpu:1" -> "GPU:1", the form TensorFlow's memory statistics take (logical CPUs share CPU:0's allocator)."""
    kind, index = device.strip("/").upper().split(":")
    return f"{kind}:{index if kind == 'GPU' else 0}"


def _line(name: str, text: str, ok: bool | None = None) -> bool:
    print(f"{name:<28} {text}" + ("" if ok is None else ("  OK" if ok else "  FAIL")), flush=True)
    return ok is not False


def agreement(args, width, device: str, devices: list[str]) -> tuple[bool, dict]:
    """Section 1; returns whether every check passed and the checked Setups by name."""
    from revisp_tf.train.strategy import build_strategy

    n = args.check_batch * len(devices)
    print(f"1. agreement with CPU fp32: one step of the trainer's step (SGD), paper loss, batch {n} x {args.check_crop} px")
    batch, what = sample_batch(n, args.check_crop, context=False)
    cpu = Setup(_config(width, n, args.check_crop), build_strategy("one_device", ("/cpu:0",)), device="/cpu:0", sgd=True)
    weights = cpu.model.get_weights()
    ref_loss, ref_grads = cpu.gradient(batch)
    _, reordered = cpu.gradient({k: v[::-1] for k, v in batch.items()})
    spread = _relative_l2(reordered, ref_grads)
    print(f"   data: {what}; CPU fp32 loss {ref_loss:.6g}, its gradient's rounding spread (batch reversed) {spread:.1e} rel L2")
    runs = {f"{name} on {device}": (mixed, jit, build_strategy("one_device", (device,)), device)
            for name, mixed, jit in (("fp32", False, False), ("fp32 + XLA", False, True), ("mixed", True, False))}
    runs[f"fp32 Mirrored x{len(devices)}"] = (False, False, build_strategy("mirrored", tuple(devices)), None)
    ok, setups = True, {}
    for name, (mixed, jit, strategy, on) in runs.items():
        setups[name] = setup = Setup(_config(width, n, args.check_crop, mixed, jit), strategy, weights, on, sgd=True)
        loss, grads = setup.gradient(batch)
        loss_rel, grad_rel = abs(loss - ref_loss) / abs(ref_loss), _relative_l2(grads, ref_grads)
        loss_tol, grad_floor, factor = TOLERANCES["mixed" if mixed else "fp32"]
        grad_tol = max(grad_floor, factor * spread)
        ok &= _line(f"   {name}", f"loss rel {loss_rel:.1e} <= {loss_tol:g}, gradient rel L2 {grad_rel:.1e} <= {grad_tol:.1e}"
                    f"{setup.loss_scale()}", loss_rel <= loss_tol and grad_rel <= grad_tol)
    if len(devices) < 2:
        print("   one GPU: Mirrored ran one replica; the multi-replica check needs two")
    return ok, setups


def _timed(name: str, setup: Setup, data, patches: int, repeats: int, device: str | None) -> None:
    import tensorflow as tf

    if device:
        tf.config.experimental.reset_memory_stats(_stats_name(device))
    seconds = _median_seconds(lambda: setup.step(data), repeats)
    peak = f", allocator peak {tf.config.experimental.get_memory_info(_stats_name(device))['peak'] / GIB:.2f} GiB" if device else ""
    _line(f"   {name}", f"{1 / seconds:.3f} steps/s ({patches / seconds:.2f} patches/s){peak}")


def speed_and_memory(args, width, device: str, checked: dict) -> None:
    """Section 2; the dry run times the steps section 1 traced (SGD, same shapes) instead of building Adam ones."""
    import tensorflow as tf

    from revisp_tf.train.strategy import build_strategy

    print(f"\n2. speed and memory: the trainer's step ({'SGD, dry run' if checked else 'Adam'}), batch {args.batch} x "
          f"{args.crop} px, width {width['base_filters']}, depth {width['depth']}")
    data, what = sample_batch(args.batch, args.crop, context=False)
    print(f"   data: {what}")
    for name, mixed, jit in (("fp32", False, False), ("mixed", True, False), ("fp32 + XLA", False, True)):
        gc.collect()
        tf.config.experimental.reset_memory_stats(_stats_name(device))  # the build's peak counts too
        setup = checked.get(f"{name} on {device}") or Setup(
            _config(width, args.batch, args.crop, mixed, jit), build_strategy("one_device", (device,)), device=device)
        _timed(f"train {name}", setup, _distributed(setup.strategy, data), args.batch, args.repeats, device)
        if jit:
            continue
        with tf.device(device):
            x = tf.constant(data["rgb"][:1])
            infer = tf.function(lambda v, m=setup.model: m(v, training=False))
            ms = 1e3 * _median_seconds(lambda: infer(x).numpy(), args.repeats)
        _line(f"   inference {name}", f"{ms:.1f} ms per {args.crop} px patch (batch 1)")
        del setup


def mirrored_speed(args, width, devices: list[str], checked: Setup | None) -> None:
    """Section 3; the dry run times the Mirrored step section 1 traced (SGD) instead of building an Adam one."""
    from revisp_tf.train.strategy import build_strategy

    if checked is not None:
        big, crop, setup = args.check_batch * len(devices), args.check_crop, checked
    else:
        big, crop = args.batch * len(devices), args.crop
        setup = Setup(_config(width, big, crop), build_strategy("mirrored", tuple(devices)))
    print(f"\n3. MirroredStrategy over {len(devices)} device(s) ({', '.join(devices)}): fp32, global batch {big} x {crop} px")
    data, _ = sample_batch(big, crop, context=False)
    _timed("train fp32", setup, _distributed(setup.strategy, data), big, args.repeats, None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="no GPU needed: small sizes on CPU devices")
    p.add_argument("--batch", type=int, help="timed batch per device (default 6; dry run 2)")
    p.add_argument("--crop", type=int, help="timed patch size (default 504; dry run 64)")
    p.add_argument("--check-batch", type=int, help="agreement checks: batch per device (default 2; dry run 1)")
    p.add_argument("--check-crop", type=int, help="agreement checks: crop (default 256; dry run 64)")
    p.add_argument("--repeats", type=int, help="timed steps after the warm-up (default 5; dry run 1)")
    args = p.parse_args()
    dry = args.dry_run
    args.batch = args.batch or (2 if dry else 6)
    args.crop = args.crop or (64 if dry else 504)
    args.check_batch = args.check_batch or (1 if dry else 2)
    args.check_crop = args.check_crop or (64 if dry else 256)
    args.repeats = args.repeats or (1 if dry else 5)
    import tensorflow as tf

    if dry:  # two logical CPUs stand in for two GPUs (before TF initialises)
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices, width = ["/cpu:0", "/cpu:1"], DRY
    else:
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            print("no NVIDIA GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty); "
                  "run with --dry-run to exercise this script on CPU", file=sys.stderr)
            return 2
        tf.config.experimental.enable_tensor_float_32_execution(False)  # fp32 means fp32 in the agreement check
        devices, width = [f"/gpu:{i}" for i in range(len(gpus))], PAPER
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            print(f"{gpu.name}: {details.get('device_name', '?')}, compute capability {details.get('compute_capability', '?')}")
    print(f"TensorFlow {tf.__version__}; {'DRY RUN on CPU devices' if dry else 'GPU run'}\n")
    ok, setups = agreement(args, width, devices[-1], devices)
    if not dry:
        setups.clear()  # free the check models' memory before timing at the paper's batch
    speed_and_memory(args, width, devices[-1], setups)
    mirrored_speed(args, width, devices, setups.get(f"fp32 Mirrored x{len(devices)}"))
    print(f"\n{'all checks passed' if ok else 'SOME CHECKS FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
