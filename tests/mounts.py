"""Folders that refuse writes for real: a full or read-only tmpfs (root), or a chmod-ed folder (other users).

Tests run as root in CI, and root ignores permission bits, so a read-only folder is a read-only
tmpfs there. Mounting needs root (CAP_SYS_ADMIN); where it is refused the test skips, saying why.
"""

import contextlib
import os
import subprocess

import pytest


def _mount_tmpfs(path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        reason = getattr(e, "stderr", "") or str(e)
        pytest.skip(f"cannot mount a tmpfs here ({reason.strip()}); this test needs root (CAP_SYS_ADMIN)")


@contextlib.contextmanager
def full_folder(path, size_kb: int = 64):
    """A tmpfs of `size_kb` KiB at `path`, unmounted afterwards."""
    _mount_tmpfs(path, f"size={size_kb}k")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_folder(path):
    """A folder nobody can write into: a read-only tmpfs for root, mode 0o555 for anyone else."""
    if os.geteuid() != 0:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    _mount_tmpfs(path, "ro,size=64k")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
