from pathlib import Path

import pytest
import yaml

from revisp_tf.train import config as C

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def test_shipped_configs_load_and_match_the_paper():
    s7 = C.load_config(CONFIGS / "paper_s7_dual.yaml")
    assert (s7.model.variant, s7.model.base_filters, s7.data.batch_size, s7.data.crop) == ("dual", 64, 6, 504)
    assert [(p.epochs, p.learning_rate, p.loss) for p in s7.optim.phases] == [(200, 1e-4, "paper"), (20, 1e-5, "l2")]
    assert s7.optim.weight_decay == 1e-6
    p20 = C.load_config(CONFIGS / "paper_p20_single.yaml")
    assert (p20.model.variant, p20.total_epochs, p20.data.crop) == ("single", 230, 496)
    assert p20.loss.gamma == pytest.approx(1 / 3.6)
    assert C.load_config(CONFIGS / "baseline_unet.yaml").optim.phases[0].loss == "mse_bayer"
    assert C.load_config(CONFIGS / "demo.yaml").data.source == "synthetic"


def test_overrides_and_round_trip(tmp_path):
    cfg = C.load_config(CONFIGS / "demo.yaml", ["optim.phases.0.epochs=3", "model.base_filters=4", "loss.gamma=0.5"])
    assert (cfg.optim.phases[0].epochs, cfg.model.base_filters, cfg.loss.gamma) == (3, 4, 0.5)
    C.dump_config(cfg, tmp_path / "config.yaml")
    assert C.load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize(
    "values, overrides, message",
    [
        ({"model": {"varient": "dual"}}, [], "unknown config key 'model.varient'"),
        ({"data": {"train_dir": "x", "batch_size": "six"}}, [], "data.batch_size: expected int, got str"),
        ({"data": {"train_dir": "x"}}, ["runtime.seed=1.5"], "runtime.seed: expected int, got float"),
        ({"data": {"train_dir": "x"}}, ["optim.lr=1"], "unknown config key 'optim.lr'"),
        ({"data": {"train_dir": "x"}}, ["model.variant=triple"], "unknown model.variant 'triple'; expected one of"),
        ({"data": {"train_dir": "x", "crop": 101}}, [], "data.crop: must be even"),
        ({}, [], "data.train_dir: required"),
        ({"data": {"train_dir": "x"}}, ["optim.phases.0.epochs=0"], "optim.phases.0.epochs: must be positive"),
        ({"data": {"train_dir": "x"}}, ["novalue"], "expected KEY=VALUE"),
    ],
)
def test_bad_configs_name_the_key(values, overrides, message):
    with pytest.raises(C.ConfigError, match=message):
        C.parse_config(values, overrides)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"variant": "dual", "extra": 1}}))
    with pytest.raises(C.ConfigError, match=r"c.yaml: unknown config key 'model.extra'"):
        C.load_config(path)
    with pytest.raises(C.ConfigError, match="config file not found"):
        C.load_config(tmp_path / "missing.yaml")


def test_jpeg_quality_is_a_range_or_empty():
    assert C.parse_config({"data": {"train_dir": "x", "jpeg_quality": [70, 95]}}).data.jpeg_quality == (70, 95)
    assert C.parse_config({"data": {"train_dir": "x"}}).data.jpeg_quality == ()
    with pytest.raises(C.ConfigError, match="data.jpeg_quality"):
        C.parse_config({"data": {"train_dir": "x", "jpeg_quality": [95, 70]}})
