"""Package data: the shipped model, weights, MANIFEST and configs travel inside the installed package."""

import ast
import fnmatch
import importlib.resources
from pathlib import Path

from revisp_tf import weights

REPO = Path(__file__).resolve().parents[1]


def _package_data() -> dict:
    """setup.py's package_data, read without running setup()."""
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    return ast.literal_eval(next(k.value for k in call.keywords if k.arg == "package_data"))


def test_every_manifest_file_is_package_data_and_found_by_importlib_resources():
    patterns = _package_data()["revisp_tf.saved_models"]
    packaged = importlib.resources.files("revisp_tf.saved_models")
    names = ["MANIFEST.json", *weights.read_manifest()]
    assert weights.SHIPPED_MODEL in names and len(names) >= 4
    for name in names:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} would be left out of the wheel"
        assert (packaged / name).is_file()
    for name in weights.read_manifest():
        assert weights.sha256(Path(str(packaged / name))) == weights.read_manifest()[name]["sha256"]


def test_configs_travel_as_package_data():
    from revisp_tf.demo import DEMO_CONFIG

    packaged = importlib.resources.files("revisp_tf.configs")
    repo_configs = sorted(p.name for p in (REPO / "training" / "configs").glob("*.yaml"))
    assert "demo.yaml" in repo_configs
    assert all(fnmatch.fnmatch(n, p) for n in repo_configs for p in _package_data()["revisp_tf.configs"])
    assert sorted(p.name for p in packaged.iterdir() if p.name.endswith(".yaml")) == repo_configs
    assert DEMO_CONFIG.read_text() == (REPO / "training" / "configs" / "demo.yaml").read_text()
