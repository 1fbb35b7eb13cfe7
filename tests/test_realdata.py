"""revisp_tf.realdata: one place says where real camera data lives; $REVISP_REALDATA overrides it."""

from pathlib import Path

from revisp_tf import realdata


def test_default_is_shared_realdata_beside_the_checkout(monkeypatch):
    monkeypatch.delenv(realdata.ENV, raising=False)
    assert realdata.realdata_dir() == Path(realdata.__file__).resolve().parents[2] / "shared" / "realdata"


def test_the_environment_variable_overrides_it(monkeypatch, tmp_path):
    monkeypatch.setenv(realdata.ENV, str(tmp_path))
    assert realdata.realdata_dir() == tmp_path
