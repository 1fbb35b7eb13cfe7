"""A tiny U-Net must be able to fit one fixed pair: the training step, loss and metric work together."""

import tensorflow as tf

from revisp_tf.models import build_reverse_isp, training_model
from revisp_tf.scoring import metrics
from revisp_tf.train.config import parse_config
from revisp_tf.train.objectives import build_objective
from revisp_tf.train.trainer import replica_gradients


def _fit(rgb, raw, steps=800):
    tf.keras.utils.set_random_seed(0)
    model = build_reverse_isp("single", base_filters=8, depth=2)
    train_model = training_model(model)
    cfg = parse_config({"model": {"variant": "single"}, "data": {"train_dir": "unused"},
                        "optim": {"phases": [{"epochs": 1, "loss": "mse_bayer"}]}})
    objective = build_objective(cfg, "mse_bayer")
    optimizer = tf.keras.optimizers.Adam(1e-3)
    batch = {"rgb": tf.constant(rgb[None]), "raw": tf.constant(raw[None])}

    @tf.function
    def step():
        _, grads = replica_gradients(train_model, objective, batch, 1)
        optimizer.apply_gradients(zip(grads, train_model.trainable_variables))

    for _ in range(steps):
        step()
    return metrics.challenge_psnr(model(batch["rgb"], training=False).numpy()[0], raw)


def test_overfits_a_real_libraw_pair(realdata, tmp_path):
    from revisp_tf.data.pairs import make_pairs_from_raw
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.io.images import read_raw_npy, read_rgb
    from revisp_tf.isp.sensor import PROJECT_10BIT

    make_pairs_from_raw([realdata / "raw" / "canon_550d" / "colorchart.dng"], tmp_path, patch=64, stride=512, progress=False)
    ex = scan_pairs(tmp_path, sensor=PROJECT_10BIT)[1]
    rgb, raw = read_rgb(ex.rgb), PROJECT_10BIT.to_model_units(read_raw_npy(ex.raw))
    assert raw.std() > 0.02  # a patch with content, not a flat wall
    assert _fit(rgb, raw) >= 35.0


def test_overfits_a_synthetic_pair(tmp_path):
    from revisp_tf.data.synthetic import make_synthetic_pairs
    from revisp_tf.io.images import read_raw_npy, read_rgb
    from revisp_tf.isp.sensor import PROJECT_10BIT

    make_synthetic_pairs(tmp_path, count=1, seed=3, patch=64, noise=False)
    rgb, raw = read_rgb(tmp_path / "0_0.jpg"), PROJECT_10BIT.to_model_units(read_raw_npy(tmp_path / "0_0.npy"))
    assert _fit(rgb, raw) >= 35.0
