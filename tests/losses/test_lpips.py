"""LPIPS-Alex v0.1: equivalence with PyTorch lpips 0.1.4, frozen weights, gradients, sha256 check.

The reference distances were computed by PyTorch `lpips.LPIPS(net='alex')` carrying the same
pretrained weights on real camera image pairs (scripts/make_lpips_fixture.py), so this file
needs no torch.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from revisp_tf import weights
from revisp_tf.losses import LPIPSAlex, LPIPSLoss, lpips_distance
from revisp_tf.losses.lpips import WEIGHTS_FILE, load_weights

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lpips_reference.npz"
# conv 11x11x3x64, 5x5x64x192, 3x3x192x384, 3x3x384x256, 3x3x256x256 (+ biases) and 1x1 lins.
N_PARAMS = 23296 + 307392 + 663936 + 884992 + 590080 + (64 + 192 + 384 + 256 + 256)


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    groups = sorted(int(k[1:]) for k in data if k.startswith("d"))
    return [(data[f"a{g}"].astype(np.float32) / np.float32(255),
             data[f"b{g}"].astype(np.float32) / np.float32(255), data[f"d{g}"]) for g in groups]


@pytest.fixture(scope="module")
def lpips_layer():
    return LPIPSAlex()


def _smooth_images(seed, n, h, w):
    """Generated images in [0, 1] with some structure (box-blurred noise)."""
    x = np.random.default_rng(seed).uniform(size=(n, h + 4, w + 4, 3)).astype(np.float32)
    return sum(x[:, i:i + h, j:j + w] for i in range(5) for j in range(5)) / 25


def test_matches_torch_lpips_on_real_pairs(reference):
    all_ref = np.concatenate([d for _, _, d in reference])
    # The fixture spans near-identical to unrelated images, so the check covers the whole range.
    assert all_ref.min() < 0.01 and all_ref.max() > 0.7
    errs = [np.abs(lpips_distance(a, b).numpy() - d).max() for a, b, d in reference]
    assert max(errs) <= 1e-5, errs


def test_unbatched_input_gives_the_batched_value(reference):
    a, b, d = reference[1]
    got = lpips_distance(a[2], b[2])
    assert got.shape == () and abs(float(got) - d[2]) <= 1e-5


def test_loss_is_the_batch_mean_of_the_reference(reference):
    a, b, d = reference[0]
    assert abs(float(LPIPSLoss()(a, b)) - d.mean()) <= 1e-5
    np.testing.assert_allclose(LPIPSLoss(reduction="none")(a, b).numpy(), d, atol=1e-5)


def test_identical_inputs_give_zero(reference, lpips_layer):
    a, _, _ = reference[2]
    assert np.all(lpips_layer(a, a).numpy() == 0)
    x = _smooth_images(0, 2, 40, 33)
    assert np.all(lpips_distance(x, x).numpy() == 0)


def test_frozen_with_the_shipped_weights(lpips_layer):
    assert lpips_layer.trainable_weights == []
    assert sum(int(np.prod(v.shape)) for v in lpips_layer.non_trainable_weights) == N_PARAMS
    shipped = load_weights()
    np.testing.assert_array_equal(lpips_layer.convs[0].kernel.numpy(), shipped["conv1_kernel"])
    np.testing.assert_array_equal(lpips_layer.lins[4].kernel.numpy(), shipped["lin5_kernel"])
    # Inside a model being trained, only the model's own weights are trainable.
    inp = keras.Input((48, 48, 3))
    out = keras.layers.Conv2D(3, 3, padding="same")(inp)
    model = keras.Model(inp, LPIPSAlex()(inp, out))
    assert [tuple(v.shape) for v in model.trainable_weights] == [(3, 3, 3, 3), (3,)]


def _input_gradient(layer, a, b):
    b = tf.constant(b)
    with tf.GradientTape() as tape:
        tape.watch(b)
        loss = tf.reduce_sum(layer(a, b))
    return tape.gradient(loss, b).numpy()


def test_input_gradient_matches_torch_autograd(lpips_layer):
    with np.load(FIXTURE, allow_pickle=False) as f:
        ref = f["grad_b0"]
        a, b = (f[k][: len(ref)].astype(np.float32) / np.float32(255) for k in ("a0", "b0"))
    g = _input_gradient(lpips_layer, a, b)
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
    assert np.abs(g - ref).max() <= 1e-4 * np.abs(ref).max()


def test_input_gradient_matches_finite_differences(lpips_layer):
    a, b = _smooth_images(1, 2, 48, 48), _smooth_images(2, 2, 48, 48)
    g = _input_gradient(lpips_layer, a, b)
    v = g / np.abs(g).max()
    h = 1e-3
    total = lambda x: float(tf.reduce_sum(lpips_layer(a, x)))  # noqa: E731
    fd = (total(b + h * v) - total(b - h * v)) / (2 * h)
    assert abs(fd - np.sum(g * v)) <= 0.01 * abs(fd)


def test_gradient_is_finite_on_masked_and_flat_images(lpips_layer, reference):
    # Training zeroes the pixels a net is not responsible for, in prediction and ground truth;
    # with a zero feature vector sqrt'(0) would give NaN (not reached with these weights).
    a, b, _ = reference[3]
    mask = np.zeros_like(a)
    mask[:, 20:90, 10:60] = 1
    flat = np.zeros_like(a)
    flat[:, :, :, 0] = 0.01
    for x, y in ((a * mask, b * mask), (np.zeros_like(a), flat)):
        g = _input_gradient(lpips_layer, x, y)
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_loss_trains_in_a_tf_function_under_a_strategy():
    keras.utils.set_random_seed(0)  # the conv's initial weights: with some, a step of 0.1 overshoots (it failed in one test order)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        loss_fn = LPIPSLoss(reduction="none")
        model = keras.Sequential([keras.Input((40, 40, 3)), keras.layers.Conv2D(3, 3, padding="same")])
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)
    x, y = _smooth_images(4, 2, 40, 40), _smooth_images(5, 2, 40, 40)
    frozen_before = [v.numpy() for v in loss_fn.lpips.weights]

    @tf.function
    def step(x, y):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                # Per-example losses averaged over the global batch, as a multi-replica loop must.
                loss = tf.reduce_sum(loss_fn(y, model(x))) / 2
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        return strategy.run(replica_step, args=(x, y))

    eager = float(tf.reduce_mean(loss_fn(y, model(x))))
    first = float(step(x, y))
    assert abs(first - eager) <= 1e-6
    for _ in range(3):
        last = float(step(x, y))
    assert last < first
    for before, v in zip(frozen_before, loss_fn.lpips.weights):
        np.testing.assert_array_equal(v.numpy(), before)


# Run in a fresh process: the CPU must be split into 2 logical devices before TF starts.
_MIRRORED = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from revisp_tf.losses import LPIPSAlex, LPIPSLoss, lpips_distance

rng = np.random.default_rng(0)
x, y = (rng.uniform(size=(4, 40, 40, 3)).astype(np.float32) for _ in range(2))
ref = LPIPSAlex()(x, y).numpy()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    loss_fn = LPIPSLoss(reduction="none")
    model = keras.Sequential([keras.Input((40, 40, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
batch = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(4))))

def gathered(fn):
    return tf.function(lambda b: strategy.gather(strategy.run(fn, args=b), axis=0))(batch).numpy()

def train(a, b):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(loss_fn(b, model(a))) / 4
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    return tf.reshape(loss, (1,))

kernel = model.trainable_variables[0].numpy()
print(json.dumps({
    "loss_err": float(np.abs(gathered(lambda a, b: loss_fn(a, b)) - ref).max()),
    # lpips_distance builds its shared layer lazily: here, first inside a replica of a tf.function.
    "distance_err": float(np.abs(gathered(lambda a, b: lpips_distance(a, b)) - ref).max()),
    "train_loss": float(gathered(train).sum()),
    "model_changed": bool(np.abs(model.trainable_variables[0].numpy() - kernel).max() > 0),
    "lpips_trainable": len(loss_fn.lpips.trainable_weights),
}))
"""


def test_mirrored_strategy_two_replicas():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["loss_err"] <= 1e-6 and result["distance_err"] <= 1e-6, result
    assert np.isfinite(result["train_loss"]) and result["model_changed"] and result["lpips_trainable"] == 0


def test_loss_config_round_trip():
    loss = LPIPSLoss(name="perceptual", reduction="none")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, LPIPSLoss) and restored.name == "perceptual" and restored.reduction == "none"
    a, b = _smooth_images(6, 1, 36, 36), _smooth_images(7, 1, 36, 36)
    np.testing.assert_array_equal(restored(a, b).numpy(), loss(a, b).numpy())


def test_weights_are_sha256_checked(tmp_path, monkeypatch):
    shutil.copy(weights.MODELS_DIR / WEIGHTS_FILE, tmp_path / WEIGHTS_FILE)
    shutil.copy(weights.MANIFEST, tmp_path / "MANIFEST.json")
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(weights, "MANIFEST", tmp_path / "MANIFEST.json")
    LPIPSAlex()  # intact copy loads
    with open(tmp_path / WEIGHTS_FILE, "r+b") as f:
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="sha256"):
        LPIPSAlex()


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.zeros((1, 40, 40, 4), np.float32), np.zeros((1, 40, 40, 4), np.float32), "3 channels"),
        (np.zeros((1, 30, 40, 3), np.float32), np.zeros((1, 30, 40, 3), np.float32), "at least 31"),
        (np.zeros((1, 40, 40, 3), np.float32), np.zeros((1, 40, 48, 3), np.float32), "same shape"),
        (np.full((1, 40, 40, 3), 255, np.float32), np.zeros((1, 40, 40, 3), np.float32), r"\[0, 1\]"),
    ],
)
def test_bad_input_raises(a, b, message):
    with pytest.raises(ValueError, match=message):
        lpips_distance(a, b)
