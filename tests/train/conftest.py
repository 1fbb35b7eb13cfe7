import pytest


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory):
    """16 synthetic 64 px pairs over several scenes, with their demosaiced ground truth."""
    from revisp_tf.data.prepare_gt import prepare_gt
    from revisp_tf.data.synthetic import make_synthetic_pairs
    from revisp_tf.isp.sensor import PROJECT_10BIT

    root = tmp_path_factory.mktemp("tiny_pairs")
    make_synthetic_pairs(root, count=16, seed=0, patch=64)
    prepare_gt(root, PROJECT_10BIT, progress=False)
    return root


def tiny_config(data_dir, *extra):
    """A dual model a few hundred parameters wide, two phases of one epoch each."""
    from revisp_tf.train.config import parse_config

    return parse_config(
        {
            "model": {"variant": "dual", "base_filters": 2, "depth": 2},
            "data": {"train_dir": str(data_dir), "sensor": "project", "crop": 32, "batch_size": 4, "val_fraction": 0.3, "val_images": 2},
            "optim": {"phases": [{"epochs": 1, "learning_rate": 1e-3, "loss": "paper"}, {"epochs": 1, "learning_rate": 1e-4, "loss": "l2"}]},
            "runtime": {"checkpoint_every_steps": 1, "log_every_steps": 1, "strategy": "one_device"},
        },
        list(extra),
    )
