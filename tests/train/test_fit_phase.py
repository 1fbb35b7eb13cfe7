"""train_lib's fit phase: the global stage gets exactly the closed-form fit of the training pairs."""

import numpy as np

from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.models import load_reverse_isp, predict_bayer
from revisp_tf.scoring.baselines import fit_baseline
from revisp_tf.train import train_lib
from tests.train.conftest import tiny_config


def test_fit_only_model_is_the_closed_form_fit(tiny_pairs, tmp_path):
    cfg = tiny_config(tiny_pairs, "model.variant=global", "model.global_stage=fitted", "optim.phases=[]")
    result = train_lib.train(cfg, tmp_path / "run", verbose=0)
    assert [h["phase"] for h in result.history] == ["fit"] and result.history[0]["step"] == 0
    model = load_reverse_isp(result.model_path)
    train, _, _ = train_lib.load_examples(cfg, tmp_path / "run")
    reference = fit_baseline(train, PROJECT_10BIT)  # the same fit, computed apart
    rng = np.random.default_rng(0)
    rgb = rng.random((32, 48, 3)).astype(np.float32)
    # The frame-gain reference is the training frames' mean statistics; untrained, the gains are 1.
    gains = model.get_layer("frame_gains")
    stats = np.stack([c.stats for c, _, _ in train_lib.example_contexts(model, train)])
    assert np.allclose(gains.reference.numpy(), stats.mean(0)) and np.all(gains.kernel.numpy() == 0)
    assert np.abs(predict_bayer(model, rgb) - reference.predict(rgb)).max() < 1e-5
    assert (tmp_path / "run" / "global_fit.json").is_file()


def test_dual_with_global_stage_trains_and_starts_at_the_fit(tiny_pairs, tmp_path):
    cfg = tiny_config(tiny_pairs, "model.global_stage=fitted", "optim.phases=[{epochs: 1, learning_rate: 1.0e-3, loss: mse_bayer}]")
    result = train_lib.train(cfg, tmp_path / "run", verbose=0)
    fit_only = train_lib.train(
        tiny_config(tiny_pairs, "model.variant=global", "model.global_stage=fitted", "optim.phases=[]"), tmp_path / "fit", verbose=0
    )
    # Step 0 of the dual model is the global stage alone: the same validation scores.
    assert result.history[0]["psnr"] == fit_only.history[0]["psnr"]
    assert result.history[-1]["step"] > 0 and np.isfinite(result.history[-1]["psnr"])


def test_a_full_disk_at_a_checkpoint_is_one_error_naming_it(tmp_path):
    """A checkpoint that does not fit: WriteError naming it and the last good one, partial files gone."""
    import tensorflow as tf

    from revisp_tf.io.atomic import WriteError
    from tests.mounts import full_folder

    v = tf.Variable(np.zeros(1000, np.float32))
    with full_folder(tmp_path / "disk", 64) as disk:
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), str(disk / "ckpt"), max_to_keep=3)
        train_lib._save_checkpoint(manager, 1)  # 4 kB: fits
        v.assign(np.zeros(1000, np.float32))
        big = tf.Variable(np.zeros(100_000, np.float32))  # 400 kB: does not
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v, big=big), str(disk / "ckpt"), max_to_keep=3)
        try:
            train_lib._save_checkpoint(manager, 2)
        except WriteError as e:
            assert "cannot write checkpoint 2" in str(e) and "ckpt-1" in str(e)
        else:
            raise AssertionError("expected a WriteError")
        assert not list((disk / "ckpt").glob("*_temp*"))


def test_jit_compiled_training_step_equals_the_plain_one(tiny_pairs):
    """runtime.jit_compile: the XLA step gives the same loss terms as the plain step (float32, 1e-4 relative)."""
    import keras
    import tensorflow as tf

    from revisp_tf.data.pipeline import make_dataset
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.models import training_model
    from revisp_tf.train.objectives import build_objective
    from revisp_tf.train.trainer import distributed_step, make_optimizer

    cfg = tiny_config(tiny_pairs, "model.global_stage=fitted", "optim.phases=[{epochs: 1, learning_rate: 1.0e-3, loss: mse_bayer}]")
    examples = scan_pairs(tiny_pairs, sensor=PROJECT_10BIT)[:4]
    batch = next(iter(make_dataset(examples, crop=32, batch_size=4, sensor=PROJECT_10BIT, with_demosaiced=False,
                                   contexts=train_lib.example_contexts(train_lib.build_model(cfg), examples))))
    from tensorflow.python.framework import (
        config as tf_config,  # no public switch back; another test's train() set it
    )

    strategy = tf.distribute.get_strategy()
    terms = []
    deterministic = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()  # XLA has no deterministic MaxPool gradient
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = train_lib.build_model(cfg)
        tm = training_model(model)
        opt = make_optimizer(cfg)
        opt.build(tm.trainable_variables)
        step = distributed_step(strategy, tm, opt, build_objective(cfg, "mse_bayer"), 4, False, jit)
        terms.append([float(step(batch)["total"]) for _ in range(2)])
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    assert np.allclose(terms[0], terms[1], rtol=1e-4), terms
