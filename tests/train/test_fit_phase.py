"""train_lib's fit phase: the global stage gets exactly the closed-form fit of the training pairs."""

import numpy as np

from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.models import load_reverse_isp, predict_bayer
from revisp_tf.scoring.baselines import fit_baseline
from revisp_tf.train import train_lib
from tests.train.conftest import tiny_config


def test_fit_only_model_is_the_closed_form_fit(tiny_pairs, tmp_path):
    # Frame-blind: the curves fitted on the RAW as stored, whatever gains the pairs record.
    cfg = tiny_config(tiny_pairs, "model.variant=global", "model.global_stage=fitted", "model.capture_metadata=false", "optim.phases=[]")
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
    assert gains.recorded.numpy() == 0.0  # so recorded gains given at inference are ignored
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


def _pairs_with_gains(src, dst, seed):
    """A copy of the pairs `src` whose every scene records random gains, its RAW divided by them as a camera's would be."""
    import json
    import shutil

    from revisp_tf.io.metadata import CaptureMetadata

    data = shutil.copytree(src, dst)
    meta = json.loads((data / "meta.json").read_text())
    rng = np.random.default_rng(seed)
    for name, scene in meta["scenes"].items():
        c = CaptureMetadata((rng.uniform(1.5, 2.5), 1.0, rng.uniform(1.2, 2.0)), rng.uniform(0.8, 1.5), "test")
        scene["capture"] = c.to_json()
        scene["patches"] = [{k: v for k, v in q.items() if k != "capture"} for q in scene["patches"]]  # the scene's stands
        for npy in data.glob(f"{name}_*.npy"):
            raw = np.load(npy)
            if raw.shape[-1] != 4:
                continue  # the demosaiced ground truth (unused by a fit-only model)
            np.save(npy, np.round(raw / (np.array(c.wb)[[0, 1, 1, 2]] * c.exposure_gain)).astype(raw.dtype))
    (data / "meta.json").write_text(json.dumps(meta))
    return data


def test_recorded_gains_fit_balanced_curves_and_the_prior(tiny_pairs, tmp_path):
    """Pairs whose meta.json records each scene's gains: the curves are the fit on balanced RAW, the prior
    is the ridge on the frames' statistics, and the model applies a frame's recorded gains exactly."""
    import json

    from revisp_tf.data.examples import read_example
    from revisp_tf.global_stage.context import capture_log_gains, context_window
    from revisp_tf.global_stage.fit import balanced_bayer, fit_global_inverse
    from revisp_tf.global_stage.placement import frame_contexts
    from revisp_tf.global_stage.prior import fit_frame_prior
    from revisp_tf.io.metadata import CaptureMetadata, patch_captures
    from revisp_tf.isp.bayer import mosaic

    data, rng = _pairs_with_gains(tiny_pairs, tmp_path / "pairs", seed=1), np.random.default_rng(0)
    cfg = tiny_config(data, "model.variant=global", "model.global_stage=fitted", "optim.phases=[]")
    result = train_lib.train(cfg, tmp_path / "run", verbose=0)
    model = load_reverse_isp(result.model_path)
    train, _, _ = train_lib.load_examples(cfg, tmp_path / "run")
    captures = patch_captures([ex.rgb for ex in train])
    rgbs, bayers = zip(*(read_example(ex, PROJECT_10BIT) for ex in train))
    curves = fit_global_inverse(rgbs, [balanced_bayer(b, c.wb, c.exposure_gain) for b, c in zip(bayers, captures)])
    np.testing.assert_allclose(model.get_layer("global_curves").inverse().curves, curves.curves, atol=1e-5)
    frames = list({id(c): c for c, _, _ in frame_contexts(train, captures)}.values())
    prior = fit_frame_prior([c.stats for c in frames], [c.gains for c in frames])
    np.testing.assert_allclose(model.get_layer("frame_gains").bias.numpy(), prior.bias, atol=1e-6)
    assert json.loads((tmp_path / "run" / "global_fit.json").read_text())["capture_metadata"] is True
    assert model.get_layer("frame_gains").recorded.numpy() == 1.0
    # Given a frame's gains, the model is the balanced curves divided by them (packed RGGB), clipped.
    capture = CaptureMetadata((2.0, 1.0, 1.5), 1.25, "test")
    rgb = rng.random((32, 48, 3)).astype(np.float32) * 0.6
    context = frame_contexts([train[0]], [capture])[0][0]
    got = predict_bayer(model, rgb, context=context_window(context, 0, 0, 32, 48))
    scale = np.exp(capture_log_gains(capture.wb, capture.exposure_gain)[0])[[0, 1, 1, 2]]
    want = np.clip(np.asarray(mosaic(curves.demosaiced(rgb))) * scale, 0, 1)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # eval: the recorded gains by default; --metadata none leaves them to the prior, which cannot know
    # these arbitrary per-scene gains.
    from revisp_tf.scoring.evaluate import run_eval

    test = _pairs_with_gains(tiny_pairs, tmp_path / "test", seed=2)  # other gains than the training frames'
    recorded, _ = run_eval(model, test, PROJECT_10BIT, baselines=(), progress=False)
    prior_only, _ = run_eval(model, test, PROJECT_10BIT, baselines=(), progress=False, metadata="none")
    assert recorded["model"]["psnr"] > prior_only["model"]["psnr"] + 2.0, (recorded["model"]["psnr"], prior_only["model"]["psnr"])
