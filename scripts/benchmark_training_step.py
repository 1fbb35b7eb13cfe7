"""Training steps per second: the joint step (before) against the sequential step (the default), and recompute.

    python scripts/benchmark_training_step.py                      # paper config, batch 1 at 504 px, 5 repeats
    python scripts/benchmark_training_step.py --batch 2 --crop 256 --repeats 7
    python scripts/benchmark_training_step.py --config demo.yaml

One process, one model, one optimizer: the trainer's own step function
(`revisp_tf.train.trainer.distributed_step` under a OneDevice strategy) built three ways from
the config (--config, its first phase's loss):
  joint       both nets forward, one backward (`runtime.sequential_nets: false`, the step before);
  sequential  one net forward and backward, then the other, one update (the default for dual);
  recompute   sequential with `runtime.recompute: true`.
Each is traced and run once untimed, then the three are timed in turn, --repeats rounds (each
round starting with the next one), so they share the machine's load. Reported: the median wall
and CPU (this process, all threads) seconds per step, and the median over rounds of each step's
time over the joint step's in the same round: on a shared machine the load swings wall times by
tens of percent between rounds, far less within one. The batch is real S7 camera JPEG crops
(aim22_s7_rgb of the real-data folder, revisp_tf.realdata; scene 78, with overexposed skies) with
their classical inverse ISP as ground truth; random images of the same size when that folder is
absent (the report says which). Exit status 1 if the sequential step is more than 10 % slower
than joint (the median wall-time ratio).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from revisp_tf.realdata import realdata_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
REALDATA = realdata_dir()
SLOWER_ALLOWED = 0.10


def sample_batch(batch: int, crop: int, context: bool) -> tuple[dict, str]:
    """A training batch (rgb, demosaiced, raw; context for a global stage) of real S7 crops, or random images; and what it is."""
    import cv2
    import numpy as np

    from revisp_tf.isp.bayer import mosaic
    from revisp_tf.isp.unprocess import default_params, unprocess

    paths = [REALDATA / "aim22_s7_rgb" / f"78_{k}.jpg" for k in (30, 13, 31, 29, 22, 14)]
    if all(p.is_file() for p in paths):
        rgb = np.stack([cv2.imread(str(paths[i % len(paths)]))[:crop, :crop, ::-1] for i in range(batch)]) / 255.0
        what = f"real S7 crops (scene 78), {crop} px"
    else:
        rgb = np.random.default_rng(0).random((batch, crop, crop, 3))
        what = f"random {crop} px images (no real-data folder)"
    rgb = rgb.astype(np.float32)
    demosaiced = unprocess(rgb, default_params()).numpy()
    out = {"rgb": rgb, "demosaiced": demosaiced, "raw": mosaic(demosaiced).numpy()}
    if context:
        from revisp_tf.global_stage.context import frame_context

        out["context"] = np.stack([frame_context(x) for x in rgb])
    return out, what


def step_functions(cfg) -> dict:
    """The trainer's step for this config three ways, sharing one model and optimizer."""
    import keras

    from revisp_tf.models import training_model
    from revisp_tf.train.objectives import build_objective, needs_lpips, net_objectives
    from revisp_tf.train.recompute import with_recomputed_unets
    from revisp_tf.train.strategy import build_strategy
    from revisp_tf.train.train_lib import build_model
    from revisp_tf.train.trainer import distributed_step, make_optimizer

    keras.utils.set_random_seed(cfg.runtime.seed)
    strategy = build_strategy("one_device")
    loss = cfg.optim.phases[0].loss
    with strategy.scope():
        model = build_model(cfg)
        train_model = training_model(model)
        recomputed = with_recomputed_unets(train_model)
        optimizer = make_optimizer(cfg)
        optimizer.build(train_model.trainable_variables)
        lpips_fn = None
        if needs_lpips(cfg) and loss == "paper":
            from revisp_tf.losses.lpips import LPIPSAlex

            lpips_fn = LPIPSAlex(name="lpips")
    objective, nets = build_objective(cfg, loss, lpips_fn), net_objectives(cfg, loss, lpips_fn)
    if nets is None:
        raise SystemExit(f"{cfg.model.variant} with loss {loss}: no sequential step (the nets' losses are coupled)")

    def make(tm, per_net):
        return distributed_step(strategy, tm, optimizer, objective, cfg.data.batch_size, False, cfg.runtime.jit_compile, per_net)

    return {"joint": make(train_model, None), "sequential": make(train_model, nets), "recompute": make(recomputed, nets)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="paper_s7_dual.yaml", help="a file of training/configs/")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--crop", type=int, default=504)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import tensorflow as tf

    from revisp_tf.train.config import load_config

    cfg = load_config(REPO / "training" / "configs" / args.config,
                      [f"data.batch_size={args.batch}", f"data.crop={args.crop}", "data.train_dir=unused"])
    batch, what = sample_batch(args.batch, args.crop, cfg.model.global_stage != "none")
    batch = {k: tf.constant(v) for k, v in batch.items()}
    steps = step_functions(cfg)
    for fn in steps.values():  # trace, and one untimed step each
        fn(batch)["total"].numpy()
    names = list(steps)
    wall, cpu = {n: [] for n in names}, {n: [] for n in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # each round starts with another: no step always follows the same
            t, c = time.perf_counter(), time.process_time()
            steps[name](batch)["total"].numpy()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    print(f"{args.config}: {cfg.model.variant} base {cfg.model.base_filters}, {cfg.optim.phases[0].loss} loss, batch {args.batch}, "
          f"{what}; {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.repeats} rounds")
    ratio = lambda d, n: statistics.median(a / b for a, b in zip(d[n], d["joint"]))  # noqa: E731
    for n in names:
        w = statistics.median(wall[n])
        print(f"{n:>11}: wall {w:6.2f} s/step ({min(wall[n]):.2f}-{max(wall[n]):.2f}), {1 / w:.4f} steps/s; "
              f"CPU {statistics.median(cpu[n]):6.2f} s/step; time / joint's in the same round: wall {ratio(wall, n):.3f}, "
              f"CPU {ratio(cpu, n):.3f}")
    slower = ratio(wall, "sequential") - 1
    ok = slower <= SLOWER_ALLOWED
    print(f"sequential vs joint (median of the rounds' wall-time ratios): {slower:+.1%} (allowed +{SLOWER_ALLOWED:.0%}): "
          f"{'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
