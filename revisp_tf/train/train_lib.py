"""`revisp-tf train`: run directory, data, the global stage's fit phase, the training phases and resume.

Layout of a run directory:
  config.yaml     the resolved config (a rerun must match it to resume)
  checkpoints/    tf.train.CheckpointManager files (TF writes them to temporary names, then renames)
  tb/train, tb/val  TensorBoard event files
  global_fit.json the closed-form fit of the global stage (models with `global_stage: fitted`)
  history.json    validation metrics after each epoch (epoch 0: right after the fit phase)
  model.keras     the final inference model;  DONE  marks a finished run

The phases, in order: (1) the fit phase, for a global stage: its curves fitted in closed form
on all training pairs (`global_inverse.fit_global_inverse`, seconds), its frame-gain reference
set to the training frames' mean statistics; (2) the optimisation phases of `optim.phases`,
training everything jointly. The step lives in `trainer`, validation in `evaluator`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml
from absl import logging

from revisp_tf.data.layout import META_NAME
from revisp_tf.io.atomic import WriteError, atomic_write
from revisp_tf.isp.sensor import get_sensor
from revisp_tf.models import build_reverse_isp, training_model
from revisp_tf.models.reverse_isp import has_global_stage
from revisp_tf.train import config as config_lib
from revisp_tf.train.objectives import build_objective, needs_demosaiced, needs_lpips, net_objectives
from revisp_tf.train.strategy import build_strategy, is_chief
from revisp_tf.train.trainer import distributed_step, init_weights, make_optimizer
from revisp_tf.train.validation import validate

_RUN_FILES = ("checkpoints", "tb", "history.json", "model.keras", "DONE", "config.yaml", "global_fit.json")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked."""


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    history: list[dict]
    resumed_from_step: int


def check_run_dir(cfg: config_lib.ExperimentConfig, run_dir: Path, overwrite: bool) -> None:
    """Refuses to touch a finished run, or an unfinished one made with another config, unless `overwrite`."""
    if not run_dir.exists():
        return
    done = (run_dir / "DONE").exists()
    saved = run_dir / "config.yaml"
    differs = saved.exists() and yaml.safe_load(saved.read_text()) != config_lib.to_dict(cfg)
    if overwrite:
        for name in _RUN_FILES:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    elif done:
        raise RunDirError(f"{run_dir}: holds a finished run; pass --overwrite to train it again, or choose another --run-dir")
    elif differs:
        raise RunDirError(f"{run_dir}: holds an unfinished run with a different config; use --overwrite or another --run-dir")


def load_examples(cfg: config_lib.ExperimentConfig, run_dir: Path):
    """Train and validation examples, checked before any training starts."""
    from revisp_tf.data.scan import scan_pairs, split_by_scene

    data = cfg.data
    if data.source == "synthetic":
        from revisp_tf.data.synthetic import make_synthetic_pairs

        train_dir = run_dir / "data"
        if not (train_dir / META_NAME).exists():
            logging.info("making %d synthetic pairs in %s", data.synthetic_count, train_dir)
            make_synthetic_pairs(train_dir, count=data.synthetic_count, seed=cfg.runtime.seed, patch=data.synthetic_patch)
    else:
        train_dir = Path(data.train_dir)
    dirs = [train_dir] + ([Path(data.val_dir)] if data.val_dir else [])
    for d in dirs:
        if not d.is_dir():
            raise config_lib.ConfigError(f"data folder {d} does not exist")
    sensor = get_sensor(data.sensor)
    if needs_demosaiced(cfg):
        from revisp_tf.data.prepare_gt import prepare_gt

        for d in dirs:  # demosaiced ground truth (Demosaic Net); skips files already done
            prepare_gt(d, sensor, layout=data.layout, skip_bad=data.skip_bad)
    scan = lambda d: scan_pairs(d, layout=data.layout, sensor=sensor, skip_bad=data.skip_bad)  # noqa: E731
    examples = scan(train_dir)
    if data.val_dir:
        train, val = list(examples), list(scan(Path(data.val_dir)))
    else:
        train, val = split_by_scene(examples, data.val_fraction, seed=cfg.runtime.seed)
    if len(train) < data.batch_size:
        raise config_lib.ConfigError(
            f"{train_dir}: {len(train)} training images, fewer than one batch (data.batch_size={data.batch_size})"
        )
    if not val:
        raise config_lib.ConfigError(f"{train_dir}: no validation images (a scene split needs at least 2 scenes)")
    return train, val, sensor


def phase_of(cfg: config_lib.ExperimentConfig, epoch: int) -> int:
    """Index of the optimisation phase that `epoch` (0-based) belongs to."""
    end = 0
    for i, phase in enumerate(cfg.optim.phases):
        end += phase.epochs
        if epoch < end:
            return i
    return len(cfg.optim.phases) - 1


class _Summaries:
    """TensorBoard writers, or no-ops on non-chief workers."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        if enabled:
            self.train = tf.summary.create_file_writer(str(run_dir / "tb" / "train"))
            self.val = tf.summary.create_file_writer(str(run_dir / "tb" / "val"))

    def scalars(self, which: str, values: dict, step: int) -> None:
        if self.enabled:
            with getattr(self, which).as_default(step=step):
                for k, v in values.items():
                    tf.summary.scalar(k, float(v))

    def images(self, images: dict, step: int, max_outputs: int) -> None:
        if self.enabled:
            with self.val.as_default(step=step):
                for k, v in images.items():
                    tf.summary.image(k, v, max_outputs=max_outputs)

    def flush(self) -> None:
        if self.enabled:
            self.train.flush()
            self.val.flush()


def build_model(cfg: config_lib.ExperimentConfig) -> keras.Model:
    """The config's inference model (weights as initialised; the fit phase sets a fitted global stage)."""
    m = cfg.model
    model = build_reverse_isp(
        m.variant, m.base_filters, m.depth, m.mask_threshold, m.mask_rule, global_stage=m.global_stage, knots=m.global_knots
    )
    if has_global_stage(model) and not m.global_trainable:
        model.get_layer("global_curves").trainable = False
    return model


def example_captures(cfg: config_lib.ExperimentConfig, train_examples, val_examples):
    """(train, val) capture metadata per example, or (None, None) when the model does not take them.

    A model takes them when it has a global stage, `model.capture_metadata` is on and every
    training pair has a recorded white balance (make-pairs' meta.json).
    """
    if cfg.model.global_stage == "none" or not cfg.model.capture_metadata:
        return None, None
    from revisp_tf.io.metadata import patch_captures

    train = patch_captures([ex.rgb for ex in train_examples])
    if not train or any(c is None for c in train):
        return None, None
    return train, patch_captures([ex.rgb for ex in val_examples])


def example_contexts(model, examples, captures=None):
    """Each example's frame context (`global_stage.placement`) for a model with a global stage, else None."""
    if not has_global_stage(model):
        return None
    from revisp_tf.global_stage.placement import frame_contexts

    return frame_contexts(examples, captures)


def fit_phase(model, cfg: config_lib.ExperimentConfig, examples, contexts, sensor, captures=None) -> dict:
    """Fits the global stage in closed form on the training pairs; returns what was fitted (JSON-ready).

    With `captures` (each example's recorded gains) the curves are fitted on balanced RAW
    (`fit.balanced_bayer`) and the frame-gain prior on the frames' recorded gains (`prior`).
    """
    from revisp_tf.data.examples import read_example
    from revisp_tf.global_stage.fit import balanced_bayer, fit_global_inverse

    gains = model.get_layer("frame_gains")
    stats = np.stack([c.stats for c, _, _ in contexts])
    gains.reference.assign(stats.mean(axis=0))
    gains.recorded.assign(float(captures is not None))
    out = {"global_stage": cfg.model.global_stage, "capture_metadata": captures is not None}
    if captures is not None:
        from revisp_tf.global_stage.prior import fit_frame_prior, mean_frame_prior

        frames = list({id(c): c for c, _, _ in contexts}.values())
        fit_prior = fit_frame_prior if cfg.model.frame_prior == "ridge" else mean_frame_prior
        prior = fit_prior([c.stats for c in frames], [c.gains for c in frames])
        gains.kernel.assign(prior.kernel)
        gains.bias.assign(prior.bias)
        gains.reference.assign(prior.reference)
        out |= {"frames": len(frames), "prior": prior.to_dict()}
    else:
        out["reference_stats"] = stats.mean(axis=0).tolist()
    if cfg.model.global_stage != "fitted":
        return out
    t0 = time.perf_counter()
    rgbs, bayers = zip(*(read_example(ex, sensor) for ex in examples))
    if captures is not None:
        bayers = [balanced_bayer(b, c.wb, c.exposure_gain) for b, c in zip(bayers, captures)]
    fit = fit_global_inverse(rgbs, bayers, cfg.model.global_knots, cfg.model.global_smoothness, seed=cfg.runtime.seed)
    model.get_layer("global_curves").set_inverse(fit)
    seconds = time.perf_counter() - t0
    logging.info("global stage fitted on %d pairs in %.1f s", len(examples), seconds)
    return out | {"pairs": len(examples), "seconds": round(seconds, 2), **fit.to_dict()}


def _make_dataset(examples, contexts, cfg, sensor, **kwargs):
    from revisp_tf.data.pipeline import make_dataset

    return make_dataset(examples, crop=cfg.data.crop, sensor=sensor, contexts=contexts, **kwargs)


def train(cfg: config_lib.ExperimentConfig, run_dir, overwrite: bool = False, verbose: int = 1) -> TrainResult:
    """Trains the config's model into `run_dir`, resuming from its last checkpoint if there is one."""
    run_dir = Path(run_dir)
    check_run_dir(cfg, run_dir, overwrite)
    # MultiWorkerMirrored must exist before TF runs any op, so the strategy comes first.
    strategy = build_strategy(cfg.runtime.strategy, cfg.runtime.devices)
    keras.utils.set_random_seed(cfg.runtime.seed)
    if not cfg.runtime.jit_compile:  # XLA has no deterministic MaxPool gradient: XLA runs are not bit-reproducible
        tf.config.experimental.enable_op_determinism()
    if cfg.runtime.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    chief = is_chief(strategy)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_examples, val_examples, sensor = load_examples(cfg, run_dir)
    if chief:
        config_lib.dump_config(cfg, run_dir / "config.yaml")

    global_batch = cfg.data.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise config_lib.ConfigError(
            f"data.batch_size={global_batch} is not divisible by the {strategy.num_replicas_in_sync} replicas"
        )
    steps_per_epoch = cfg.runtime.steps_per_epoch or len(train_examples) // global_batch

    train_captures, val_captures = example_captures(cfg, train_examples, val_examples)
    with strategy.scope():
        model = build_model(cfg)
        if train_captures is not None:  # the recorded gains replace the prior in training: it is fitted, not learned
            model.get_layer("frame_gains").trainable = False
        if cfg.model.init_from:
            init_weights(model, cfg.model.init_from)
        train_model = training_model(model)
        if cfg.runtime.recompute:
            from revisp_tf.train.recompute import with_recomputed_unets

            train_model = with_recomputed_unets(train_model)
        optimizer = make_optimizer(cfg)
        optimizer.build(train_model.trainable_variables)
        lpips_fn = None
        if needs_lpips(cfg):
            from revisp_tf.losses.lpips import LPIPSAlex

            lpips_fn = LPIPSAlex(name="lpips")  # frozen; built here so its variables live in the strategy
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    ckpt_dir = run_dir / "checkpoints" if chief else Path(tempfile.mkdtemp(prefix="revisp_worker_ckpt_"))
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=3)
    train_contexts = example_contexts(model, train_examples, train_captures)
    val_contexts = example_contexts(model, val_examples, val_captures)
    summaries = _Summaries(run_dir, chief)
    val_ds = _make_dataset(val_examples, val_contexts, cfg, sensor, batch_size=max(1, min(global_batch, 8)),
                           training=False, with_demosaiced=False)
    history_path = run_dir / "history.json"
    resumed = 0
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        resumed = int(step.numpy())
        logging.info("resumed from %s (step %d)", manager.latest_checkpoint, resumed)
        if verbose:
            print(f"resumed from step {resumed}", flush=True)
        history = json.loads(history_path.read_text()) if history_path.exists() else []
    else:
        history = []
        if has_global_stage(model):
            fitted = fit_phase(model, cfg, train_examples, train_contexts, sensor, train_captures)
            val, _ = validate(model, val_ds, sensor, cfg.data.val_images)
            history.append({"epoch": 0, "step": 0, "phase": "fit", **val})
            if chief:
                _write_json(run_dir / "global_fit.json", fitted)
                _write_json(history_path, history)
            _save_checkpoint(manager, 0)
            if verbose:
                print(f"global stage ({cfg.model.global_stage}): val psnr {val['psnr']:.2f} dB  ssim {val['ssim']:.4f}", flush=True)

    step_fns: dict[int, object] = {}
    start_epoch, offset = divmod(resumed, steps_per_epoch) if steps_per_epoch else (0, 0)
    for epoch in range(start_epoch, cfg.total_epochs):
        p = phase_of(cfg, epoch)
        phase = cfg.optim.phases[p]
        optimizer.learning_rate = phase.learning_rate
        if p not in step_fns:
            objective = build_objective(cfg, phase.loss, lpips_fn)
            per_net = net_objectives(cfg, phase.loss, lpips_fn) if cfg.runtime.sequential_nets else None
            step_fns[p] = distributed_step(strategy, train_model, optimizer, objective, global_batch,
                                           cfg.runtime.mixed_precision, cfg.runtime.jit_compile, per_net)
        # One dataset per epoch seeded by the epoch: a resumed run replays the same batches.
        ds = _make_dataset(
            train_examples, train_contexts, cfg, sensor, batch_size=global_batch, training=True,
            seed=cfg.runtime.seed * 100_003 + epoch, augment=cfg.data.augment, with_demosaiced=needs_demosaiced(cfg),
            jpeg_quality=cfg.data.jpeg_quality or None,
        ).take(steps_per_epoch).skip(offset if epoch == start_epoch else 0)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dist = strategy.experimental_distribute_dataset(ds.with_options(options))
        bar = keras.utils.Progbar(steps_per_epoch, verbose=verbose, unit_name="step")
        if verbose:
            print(f"epoch {epoch + 1}/{cfg.total_epochs} (phase {p + 1}: {phase.loss}, lr {phase.learning_rate:g})", flush=True)
        bar.update(offset if epoch == start_epoch else 0)
        t0 = time.perf_counter()
        for batch in dist:
            terms = step_fns[p](batch)
            step.assign_add(1)
            s = int(step.numpy())
            bar.add(1, values=[("loss", float(terms["total"]))])
            if s % cfg.runtime.log_every_steps == 0:
                summaries.scalars("train", {f"loss/{k}": v for k, v in terms.items()} | {"learning_rate": phase.learning_rate}, s)
            if s % cfg.runtime.checkpoint_every_steps == 0:
                _save_checkpoint(manager, s)
        val, images = validate(model, val_ds, sensor, cfg.data.val_images)
        s = int(step.numpy())
        summaries.scalars("val", {f"challenge/{k}": v for k, v in val.items()}, s)
        summaries.images(images, s, cfg.data.val_images)
        summaries.flush()
        history.append({"epoch": epoch + 1, "step": s, "seconds": round(time.perf_counter() - t0, 2), **val})
        if chief:
            _write_json(history_path, history)
        _save_checkpoint(manager, s)
        if verbose:
            print(f"  val psnr {val['psnr']:.2f} dB  ssim {val['ssim']:.4f}  oe {val['psnr_oe']:.2f}  noe {val['psnr_noe']:.2f}", flush=True)
    model_path = run_dir / "model.keras"
    if chief:
        with atomic_write(model_path) as tmp:
            model.save(tmp)
        (run_dir / "DONE").write_text(f"step {int(step.numpy())}\n")
    else:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return TrainResult(run_dir, model_path, history, resumed)


def _write_json(path: Path, data) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def _save_checkpoint(manager, step: int) -> None:
    """A checkpoint, or one WriteError naming it (a full disk); the last good checkpoint stays intact."""
    try:
        manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
        for partial in Path(manager.directory).glob("*_temp*"):
            shutil.rmtree(partial, ignore_errors=True)
        reason = (getattr(e, "message", None) or str(e)).splitlines()[0]
        raise WriteError(
            f"cannot write checkpoint {step} in {manager.directory}: {reason}; "
            f"the last good checkpoint ({manager.latest_checkpoint or 'none'}) is intact"
        ) from None
