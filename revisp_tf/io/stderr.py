"""What native libraries print to the process's stderr, caught so that a command prints only what a user needs."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator

_stderr_lock = threading.Lock()


@contextlib.contextmanager
def native_stderr(drop: tuple[str, ...]) -> Iterator[list[str]]:
    """Collects what native code (libjpeg inside OpenCV, LiteRT) writes to file descriptor 2 while the block runs.

    Lines that do not start with one of `drop` are written back to stderr afterwards.
    """
    lines: list[str] = []
    with _stderr_lock, tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            text = f.read().decode("utf-8", "replace")
            lines += text.splitlines()
            other = [ln for ln in lines if not ln.startswith(drop)]
            if other:
                sys.stderr.write("\n".join(other) + "\n")
