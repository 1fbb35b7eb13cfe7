"""External programs the project runs (real ISPs and editors): finding them and asking their version.

A missing program is one FileNotFoundError naming the Debian package that provides it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

# Program -> Debian package.
PACKAGES = {"darktable-cli": "darktable", "rawtherapee-cli": "rawtherapee", "exiftool": "libimage-exiftool-perl"}


def find_tool(name: str) -> str:
    """Path of program `name`, or FileNotFoundError naming its Debian package."""
    exe = shutil.which(name)
    if exe is None:
        raise FileNotFoundError(f"{name} not found: install Debian's {PACKAGES[name]}")
    return exe


@functools.lru_cache(maxsize=None)
def tool_version(exe: str, args: tuple[str, ...], pattern: str) -> str:
    """The version `exe args` prints, group 1 of `pattern` (asked once per executable), or RuntimeError."""
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    m = re.search(pattern, proc.stdout + proc.stderr)
    if m is None:
        raise RuntimeError(f"{exe} {' '.join(args)} printed no version: {(proc.stdout + proc.stderr).strip()[:200]!r}")
    return m.group(1)
