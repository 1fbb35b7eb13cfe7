import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from revisp_tf.models import build_reverse_isp
from revisp_tf.train import train_lib, trainer
from revisp_tf.train.config import ConfigError, dump_config
from tests.train.conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]


def _weights(model_path):
    import keras

    return keras.models.load_model(model_path).get_weights()


def test_runs_logs_and_is_deterministic(tiny_pairs, tmp_path):
    cfg = tiny_config(tiny_pairs)
    first = train_lib.train(cfg, tmp_path / "a", verbose=0)
    second = train_lib.train(cfg, tmp_path / "b", verbose=0)
    assert [h["epoch"] for h in first.history] == [1, 2]
    assert np.isfinite(first.history[-1]["psnr"]) and first.history[-1]["psnr"] > 5
    for a, b in zip(_weights(first.model_path), _weights(second.model_path)):
        np.testing.assert_array_equal(a, b)
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["model"]["variant"] == "dual"

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_ev = EventAccumulator(str(tmp_path / "a" / "tb" / "train"), size_guidance={"tensors": 0}).Reload()
    val_ev = EventAccumulator(str(tmp_path / "a" / "tb" / "val"), size_guidance={"tensors": 0}).Reload()
    tags = set(train_ev.Tags()["tensors"])
    assert {"loss/oe", "loss/noe", "loss/total", "learning_rate"} <= tags
    lr = [float(tf.make_ndarray(e.tensor_proto)) for e in train_ev.Tensors("learning_rate")]
    assert lr[0] == pytest.approx(1e-3) and lr[-1] == pytest.approx(1e-4)  # the two phases
    val_tags = set(val_ev.Tags()["tensors"])
    assert {"challenge/psnr", "challenge/ssim", "challenge/psnr_oe", "challenge/psnr_noe"} <= val_tags
    assert {"input_rgb", "mask", "raw_predicted", "raw_ground_truth", "panel"} <= val_tags
    psnr_logged = [float(tf.make_ndarray(e.tensor_proto)) for e in val_ev.Tensors("challenge/psnr")]
    assert psnr_logged == pytest.approx([h["psnr"] for h in first.history], abs=1e-4)


def test_finished_run_is_not_overwritten(tiny_pairs, tmp_path):
    cfg = tiny_config(tiny_pairs, "model.variant=baseline", "optim.phases=[{epochs: 1, learning_rate: 0.001, loss: mse_bayer}]")
    train_lib.train(cfg, tmp_path / "run", verbose=0)
    with pytest.raises(train_lib.RunDirError, match="finished run"):
        train_lib.train(cfg, tmp_path / "run", verbose=0)
    assert train_lib.train(cfg, tmp_path / "run", overwrite=True, verbose=0).resumed_from_step == 0


def test_unfinished_run_with_other_config_is_refused(tiny_pairs, tmp_path):
    (tmp_path / "run").mkdir()
    dump_config(tiny_config(tiny_pairs, "model.base_filters=4"), tmp_path / "run" / "config.yaml")
    with pytest.raises(train_lib.RunDirError, match="different config"):
        train_lib.train(tiny_config(tiny_pairs), tmp_path / "run", verbose=0)


def test_init_from_copies_weights(tiny_pairs, tmp_path):
    cfg = tiny_config(tiny_pairs, "model.variant=baseline", "optim.phases=[{epochs: 1, learning_rate: 0.001, loss: mse_bayer}]")
    first = train_lib.train(cfg, tmp_path / "a", verbose=0)
    import keras

    model = keras.models.load_model(first.model_path)
    fresh = build_reverse_isp("baseline", 2, 2)
    trainer.init_weights(fresh, str(first.model_path))
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="another size"):
        trainer.init_weights(build_reverse_isp("baseline", 4, 2), str(first.model_path))


def test_bad_data_fails_before_training(tiny_pairs, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        train_lib.train(tiny_config(tmp_path / "nowhere"), tmp_path / "r1", verbose=0)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        train_lib.train(tiny_config(tiny_pairs, "data.batch_size=64"), tmp_path / "r2", verbose=0)
    assert not (tmp_path / "r2" / "checkpoints").exists()


def _cli(*args, **kw):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "revisp_tf.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_cli_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  variant: dual\n  widht: 3\n")
    proc = _cli("train", "--config", str(bad), "--run-dir", str(tmp_path / "run"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    lines = [l for l in out.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: unknown config key 'model.widht'; expected one of variant,")


@pytest.mark.slow
def test_kill_9_then_resume(tiny_pairs, tmp_path):
    config = tmp_path / "c.yaml"
    cfg = tiny_config(tiny_pairs, "optim.phases=[{epochs: 3, learning_rate: 0.001, loss: l2}]")
    dump_config(cfg, config)
    run = tmp_path / "run"
    args = ("train", "--config", str(config), "--run-dir", str(run))
    proc = _cli(*args)
    deadline = time.time() + 240
    while not list((run / "checkpoints").glob("ckpt-2.index")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "DONE").exists()
    out, _ = _cli(*args).communicate(timeout=300)
    resumed = [int(l.split()[-1]) for l in out.splitlines() if l.startswith("resumed from step")]
    assert resumed and resumed[0] >= 2, out
    assert (run / "DONE").exists() and (run / "model.keras").exists()
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 3
