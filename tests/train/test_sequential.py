"""The dual nets stepped in turn (runtime.sequential_nets) and recomputed U-Net levels (runtime.recompute)
give the joint step's gradients, BatchNorm statistics and weights.

Reference: the joint step (`trainer.replica_gradients`, both nets forward, one backward), the
training step this project had before. "Relative" is max |difference| over the largest
|reference| value of the whole gradient (or of the variable's weights): conv biases ahead of
BatchNorm have an analytic gradient of 0, so their own scale is rounding noise.
"""

import numpy as np
import pytest
import tensorflow as tf

from revisp_tf.global_stage.context import frame_context
from revisp_tf.isp.bayer import mosaic
from revisp_tf.isp.unprocess import default_params, unprocess
from revisp_tf.losses.lpips import LPIPSAlex
from revisp_tf.models import build_reverse_isp, training_model
from revisp_tf.train.config import ConfigError, parse_config
from revisp_tf.train.objectives import build_objective, net_objectives
from revisp_tf.train.recompute import recompute, with_recomputed_unets
from revisp_tf.train.sequential import net_branches, sequential_gradients
from revisp_tf.train.strategy import build_strategy
from revisp_tf.train.trainer import distributed_step, replica_gradients

TOLERANCE = 1e-6
SHARED_TOLERANCE = 1e-4
# 64 px crops of real S7 patches: three with overexposed skies (43 % of the batch's pixels), one without.
S7_CROPS = (("78_30", 0, 32), ("78_30", 0, 64), ("78_13", 0, 416), ("48_29", 0, 0))


def _batch(rgb, context=None) -> dict:
    """A pipeline batch of RGB whose ground truth is its classical inverse (UPI), independent of any net."""
    demosaiced = unprocess(rgb, default_params())
    batch = {"rgb": tf.constant(rgb), "demosaiced": demosaiced, "raw": mosaic(demosaiced)}
    if context is not None:
        batch["context"] = tf.constant(context)
    return batch


@pytest.fixture(scope="module")
def s7_batch(realdata):
    from tests.conftest import read_jpeg_rgb

    rgb = np.stack([read_jpeg_rgb(realdata / "aim22_s7_rgb" / f"{n}.jpg")[y : y + 64, x : x + 64] for n, y, x in S7_CROPS])
    batch = _batch(rgb)
    mask = build_reverse_isp("dual", 2, 1).get_layer("mask")(batch["rgb"]).numpy()
    assert 0.2 < mask.mean() < 0.8 and mask[3].max() == 0  # both nets have pixels; one example has no OE pixel
    return batch


@pytest.fixture(scope="module")
def lpips():
    return LPIPSAlex(name="lpips")


def _config(*overrides):
    return parse_config({"model": {"variant": "dual"}, "data": {"train_dir": "unused"}}, list(overrides))


def _relative(got, want) -> float:
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(got, want)) / max(
        float(np.abs(np.asarray(b)).max()) for b in want)


def _gradients(model, batch, cfg, loss, lpips_fn, sequential: bool, recomputed: bool = False):
    """(loss terms, gradients, BatchNorm statistics after the step) of one traced step from the model's weights."""
    train_model = training_model(model)
    if recomputed:
        train_model = with_recomputed_unets(train_model)
    objective, nets = build_objective(cfg, loss, lpips_fn), net_objectives(cfg, loss, lpips_fn)
    n = int(batch["rgb"].shape[0])
    if sequential:
        branches = net_branches(train_model, nets)
        step = tf.function(lambda b: sequential_gradients(train_model, branches, nets, b, n))
    else:
        step = tf.function(lambda b: replica_gradients(train_model, objective, b, n))
    weights = model.get_weights()
    terms, grads = step(batch)
    stats = [v.numpy() for v in model.non_trainable_weights]
    model.set_weights(weights)  # the next call starts from the same weights and statistics
    return {k: float(v) for k, v in terms.items()}, [g.numpy() for g in grads], stats


def _generated_rgb(n: int = 3, size: int = 64) -> np.ndarray:
    """Smooth colour fields with noise and a blown-out square (a quarter of the pixels)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    rgb = np.stack([np.stack([xx, yy, 0.5 * (xx + yy)], -1) * rng.uniform(0.4, 0.9) for _ in range(n)])
    rgb = np.clip(rgb + 0.05 * rng.standard_normal(rgb.shape), 0, 1)
    rgb[:, 8:40, 16:48] = 1.0
    return rgb.astype(np.float32)


@pytest.mark.parametrize("loss", ["paper", "l2"])
@pytest.mark.parametrize("data", ["real_s7", "generated"])
def test_sequential_gradients_equal_the_joint_step(request, lpips, data, loss):
    batch = request.getfixturevalue("s7_batch") if data == "real_s7" else _batch(_generated_rgb())
    tf.keras.utils.set_random_seed(0)
    model = build_reverse_isp("dual", base_filters=4, depth=2)
    cfg = _config()
    joint = _gradients(model, batch, cfg, loss, lpips, sequential=False)
    seq = _gradients(model, batch, cfg, loss, lpips, sequential=True)
    assert joint[0]["oe"] > 0 and joint[0]["noe"] > 0
    assert seq[0] == pytest.approx(joint[0], rel=TOLERANCE)
    assert _relative(seq[1], joint[1]) <= TOLERANCE
    assert _relative(seq[2], joint[2]) <= TOLERANCE  # BatchNorm moving statistics: one update per net, as jointly
    # Each net's pass runs that net alone: one net's activations at a time.
    branches = net_branches(training_model(model), net_objectives(cfg, loss, lpips))
    for net, other in (("oe", "unet_noe"), ("noe", "unet_oe")):
        names = {layer.name for layer in branches[net].layers}
        assert f"unet_{net}" in names and other not in names and "fusion" not in names


@pytest.mark.slow
def test_sequential_gradients_sum_over_a_shared_global_stage(lpips):
    """Generated data, a trainable global stage in front of both nets: its gradient is the two terms' sum.

    The nets' gradients agree to TOLERANCE. The shared stage's gradient sums per-pixel terms over
    the batch, in another order than jointly: float32 rounding there is already 1e-6 to 1e-5 of
    the gradient in the joint step itself when the batch is merely reordered (measured below), so
    the bound is SHARED_TOLERANCE. Dropping either net's share would be off by O(1).
    """
    tf.keras.utils.set_random_seed(0)
    model = build_reverse_isp("dual", base_filters=4, depth=2, global_stage="upi")
    rgb = _generated_rgb()
    batch = _batch(rgb, np.stack([frame_context(x) for x in rgb]))
    cfg = _config("model.global_stage=upi")
    joint = _gradients(model, batch, cfg, "paper", lpips, sequential=False)
    seq = _gradients(model, batch, cfg, "paper", lpips, sequential=True)
    reordered = _gradients(model, {k: tf.gather(v, [2, 0, 1]) for k, v in batch.items()}, cfg, "paper", lpips, sequential=False)
    names = [v.path for v in training_model(model).trainable_variables]
    shared = [i for i, n in enumerate(names) if n.startswith(("global_curves", "frame_gains"))]
    nets = [i for i in range(len(names)) if i not in shared]
    assert shared and all(np.abs(joint[1][i]).max() > 0 for i in shared)
    pick = lambda grads, idx: [grads[i] for i in idx]  # noqa: E731
    assert _relative(pick(seq[1], nets), pick(joint[1], nets)) <= TOLERANCE
    assert _relative(pick(reordered[1], shared), pick(joint[1], shared)) > TOLERANCE  # float32 rounding of these sums
    assert _relative(pick(seq[1], shared), pick(joint[1], shared)) <= SHARED_TOLERANCE


def test_coupled_losses_keep_the_joint_step():
    assert net_objectives(_config(), "mse_bayer") is None  # a loss of the fused bayer
    assert net_objectives(_config("loss.yuv_refine_weight=0.5"), "paper") is None
    assert net_objectives(_config("model.variant=single"), "paper") is None
    assert set(net_objectives(_config(), "l2")) == {"oe", "noe"}


def _train(batch, cfg, loss, lpips_fn, steps: int, sequential: bool, recomputed: bool = False, mixed_precision: bool = False):
    """Weights after `steps` of the trainer's own step (Adam, OneDevice strategy) from the same start."""
    from revisp_tf.train.trainer import make_optimizer

    tf.keras.utils.set_random_seed(0)
    strategy = build_strategy("one_device", ("/cpu:0",))
    with strategy.scope():
        model = build_reverse_isp("dual", base_filters=4, depth=2)
        train_model = training_model(model)
        if recomputed:
            train_model = with_recomputed_unets(train_model)
        optimizer = make_optimizer(cfg)
        optimizer.build(train_model.trainable_variables)
    n = int(batch["rgb"].shape[0])
    nets = net_objectives(cfg, loss, lpips_fn) if sequential else None
    step = distributed_step(strategy, train_model, optimizer, build_objective(cfg, loss, lpips_fn), n, mixed_precision, False, nets)
    for _ in range(steps):
        step(batch)
    return model.get_weights()


def _weights_agree(got, want) -> float:
    """Largest per-variable relative difference of weights."""
    return max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)) for a, b in zip(got, want))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["paper", "l2"])
def test_weights_after_three_steps_agree_on_real_s7_patches(s7_batch, lpips, loss):
    cfg = _config(f"optim.phases=[{{epochs: 1, learning_rate: 0.001, loss: {loss}}}]")
    joint = _train(s7_batch, cfg, loss, lpips, 3, sequential=False)
    seq = _train(s7_batch, cfg, loss, lpips, 3, sequential=True)
    start = build_reverse_isp("dual", base_filters=4, depth=2).get_weights()
    assert _weights_agree(seq, joint) <= TOLERANCE
    assert max(float(np.abs(a - b).max()) for a, b in zip(joint, start)) > 1e-3  # the steps moved the weights


@pytest.mark.slow
def test_recomputed_levels_give_the_same_gradients_and_one_batchnorm_update(s7_batch, lpips):
    tf.keras.utils.set_random_seed(0)
    model = build_reverse_isp("dual", base_filters=4, depth=2)
    cfg = _config()
    plain = _gradients(model, s7_batch, cfg, "paper", lpips, sequential=False)
    for sequential in (False, True):
        got = _gradients(model, s7_batch, cfg, "paper", lpips, sequential=sequential, recomputed=True)
        assert got[0] == pytest.approx(plain[0], rel=TOLERANCE)
        assert _relative(got[1], plain[1]) <= TOLERANCE
        assert _relative(got[2], plain[2]) <= TOLERANCE
    before = [v.numpy() for v in model.non_trainable_weights]
    assert _relative(plain[2], before) > 1e-3  # the step did move the statistics


def test_recompute_runs_the_forward_pass_again_without_its_state_updates():
    """`recompute`'s gradient equals the plain one and a variable assignment in `fn` happens once, not twice."""
    import keras

    counter = keras.Variable(0.0, trainable=False)  # a Keras variable, as BatchNorm's statistics are
    w = tf.Variable([[0.5, -2.0], [1.5, 0.25]])

    def fn(x):
        counter.assign_add(1.0)
        return tf.tanh(tf.matmul(x, w)) ** 2

    x = tf.constant([[0.3, -0.7], [1.1, 0.2]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fn(x) * [[1.0, 2.0], [3.0, 4.0]])
    want = tape.gradient(y, [x, w])
    counter.assign(0.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(recompute(fn)(x) * [[1.0, 2.0], [3.0, 4.0]])
    got = tape.gradient(y, [x, w])
    assert float(counter.numpy()) == 1.0
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.slow
def test_mixed_precision_sequential_step_equals_the_joint_step(s7_batch, lpips):
    """float16 compute with loss scaling: the same scale for both nets, one finiteness check for the step."""
    import keras

    cfg = _config("runtime.mixed_precision=true", "optim.phases=[{epochs: 1, learning_rate: 0.001, loss: l2}]")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        joint = _train(s7_batch, cfg, "l2", lpips, 2, sequential=False, mixed_precision=True)
        seq = _train(s7_batch, cfg, "l2", lpips, 2, sequential=True, mixed_precision=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert _weights_agree(seq, joint) <= TOLERANCE


def test_recompute_config_is_checked():
    assert _config("runtime.recompute=true").runtime.recompute
    assert _config().runtime.sequential_nets and not _config().runtime.recompute
    with pytest.raises(ConfigError, match="runtime.recompute: expected bool"):
        _config("runtime.recompute=yes please")
    with pytest.raises(ConfigError, match="runtime.recompute: the global variant has no U-Net"):
        _config("model.variant=global", "model.global_stage=upi", "runtime.recompute=true",
                "optim.phases=[{epochs: 1, learning_rate: 0.001, loss: l2}]")


@pytest.mark.slow
def test_training_runs_agree_whichever_step(tiny_pairs, tmp_path):
    """`revisp-tf train` end to end (both phases): the defaults, the joint step and recompute give the same weights."""
    import keras

    from revisp_tf.train import train_lib
    from tests.train.conftest import tiny_config

    runs = {name: train_lib.train(tiny_config(tiny_pairs, *extra), tmp_path / name, verbose=0)
            for name, extra in {"default": (), "joint": ("runtime.sequential_nets=false",),
                                "recompute": ("runtime.recompute=true",)}.items()}
    weights = {name: keras.models.load_model(r.model_path).get_weights() for name, r in runs.items()}
    assert _weights_agree(weights["default"], weights["joint"]) <= TOLERANCE
    assert _weights_agree(weights["recompute"], weights["default"]) <= TOLERANCE
    assert runs["default"].history[-1]["psnr"] == pytest.approx(runs["joint"].history[-1]["psnr"], abs=1e-4)
