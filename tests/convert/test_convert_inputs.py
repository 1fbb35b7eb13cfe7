"""`revisp-tf convert` before its pipeline runs: inputs, output names, the state folder, refusals."""

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install -e '.[test,beam]' runs these tests)")

from revisp_tf.cli import main  # noqa: E402
from revisp_tf.convert import BEAM_MISSING  # noqa: E402
from revisp_tf.convert.inputs import expand, output_names  # noqa: E402
from revisp_tf.convert.store import Store  # noqa: E402
from revisp_tf.io.images import write_rgb  # noqa: E402
from revisp_tf.models import build_reverse_isp  # noqa: E402
from revisp_tf.weights import sha256  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("b.jpg", "a.png", "c.jpeg"):
        write_rgb(tmp_path / "imgs" / name, np.zeros((4, 6, 3), np.uint8))
    (tmp_path / "imgs" / "notes.md").write_text("not an image")
    return tmp_path / "imgs"


def test_globs_folders_and_lists(folder, tmp_path):
    assert expand([str(folder / "*.jp*g")]) == [str(folder / "b.jpg"), str(folder / "c.jpeg")]
    assert expand([folder]) == [str(folder / n) for n in ("a.png", "b.jpg", "c.jpeg")]  # as infer reads a folder
    listing = tmp_path / "list.txt"
    listing.write_text(f"# train split\nimgs/b.jpg\n\n  {folder / 'a.png'}  \nimgs/gone.png\n")
    # relative to the list's folder; absolute as given; not checked (a missing one goes to the dead-letter file)
    assert expand([listing, folder / "c.jpeg"]) == [str(folder / "b.jpg"), str(folder / "a.png"), str(folder / "gone.png"), str(folder / "c.jpeg")]
    with pytest.raises(ValueError, match=r"\*.tif: no files match"):
        expand([str(folder / "*.tif")])
    with pytest.raises(ValueError, match="gone.png: no such file or folder"):
        expand([folder / "gone.png"])


def test_two_inputs_with_one_output_name_are_refused(tmp_path):
    assert output_names(["x/a.jpg", "y/b.v2.png"], "npy") == {"x/a.jpg": "a.npy", "y/b.v2.png": "b.npy"}  # as infer names them
    with pytest.raises(ValueError, match="x/a.jpg and y/a.png: both would be written as a.dng"):
        output_names(["x/a.jpg", "y/a.png"], "dng")


def test_an_output_is_committed_once_both_its_fragment_and_file_exist(tmp_path):
    store = Store(str(tmp_path))
    store.make_dirs()
    store.write_text(store.fragment("a.npy"), "{}\n")  # killed before the output's rename: redone
    (tmp_path / "b.npy").write_bytes(b"")  # no fragment (not written by convert): redone
    store.write_text(store.fragment("c.npy"), "{}\n")
    (tmp_path / "c.npy").write_bytes(b"")
    assert store.committed() == ["c.npy"]


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_folder_converted_with_other_settings_is_refused(folder, tmp_path):
    model = tmp_path / "m.keras"
    build_reverse_isp("single", base_filters=2, depth=2).save(model)
    out = tmp_path / "out"
    (out / ".convert").mkdir(parents=True)
    held = {"format": "npy", "model_sha256": sha256(model), "sensor": "s7", "tile": 256, "overlap": 64, "metadata": "none"}
    (out / ".convert" / "settings.json").write_text(json.dumps(held))
    result = _cli("convert", folder, "--out", out, "--model", model)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {out}: holds outputs made with other settings: tile 256 (now 512); convert into another --out folder"


def test_refusals_are_one_line(folder, tmp_path, monkeypatch):
    result = _cli("convert", folder, "--out", tmp_path / "o", "--metadata", "exif")
    assert result.exit_code == 2 and "'exif' is not 'none'" in result.stderr
    result = _cli("convert", folder, "--out", tmp_path / "o", "--model", tmp_path / "missing.keras")
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {tmp_path / 'missing.keras'}: model file not found"
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "apache_beam" else find_spec(name, *a))
    result = _cli("convert", folder, "--out", tmp_path / "o")
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {BEAM_MISSING}"
