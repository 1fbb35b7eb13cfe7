import shutil

import pytest

from revisp_tf.io import editors


@pytest.mark.parametrize(
    "render, tool, package",
    [(editors.render_darktable, "darktable-cli", "darktable"), (editors.render_rawtherapee, "rawtherapee-cli", "rawtherapee")],
)
def test_missing_editor_names_its_debian_package(monkeypatch, tmp_path, render, tool, package):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError) as info:
        render(tmp_path / "x.dng")
    assert str(info.value) == f"{tool} not found: install Debian's {package}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("rawtherapee-cli") is None, reason="rawtherapee-cli not on PATH (Debian package rawtherapee)")
def test_editor_failure_names_the_file(tmp_path):
    bad = tmp_path / "not_a_raw.dng"
    bad.write_bytes(b"not a DNG")
    with pytest.raises(RuntimeError, match=f"^{bad}: rawtherapee-cli failed to render it"):
        editors.render_rawtherapee(bad)
