"""Atomic file output: every file the project writes goes to a temporary name beside it, then is renamed.

So a failure never leaves a half-written file; a write that fails (read-only folder, full disk)
raises `WriteError` naming the file asked for, not its temporary name. Temporary names carry the
writer's process id: the first write of a later process into a folder removes the temporaries
that dead writers left there.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# Temporary names of atomic_write: .{name}.{pid}.{token}.tmp{suffix}
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")
_swept_dirs: set[Path] = set()


class WriteError(OSError):
    """An output file that could not be written; the message names the file asked for."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Deletes the temporaries of `atomic_write` in `folder` whose writing process is gone; returns them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP_NAME.match(p.name)
        if m and int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"])):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def _write_error(message: str, e: OSError | None = None) -> WriteError:
    err = WriteError(message)  # one argument: str() is the message alone, without "[Errno N]"
    err.errno = None if e is None else e.errno
    return err


def _reason(e: OSError, folder: Path) -> str:
    """The OS's reason; for a short write without one (NumPy's "N requested and M written"), the space left."""
    if e.strerror:
        return e.strerror
    with contextlib.suppress(OSError):
        return f"{e} ({shutil.disk_usage(folder).free:,} bytes free there: is the disk full?)"
    return str(e)


def check_writable_dir(folder) -> Path:
    """Proves a file can be written into `folder`, or into the folder it would be created in; WriteError naming it if not.

    For the CLI, before any expensive work: a read-only target fails at once. Creates nothing.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise _write_error(f"cannot write into {folder}: it is a file; expected a folder")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise _write_error(f"cannot write into {folder}: {existing} is a file; expected a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise _write_error(f"cannot write into {folder}: {e.strerror or e}", e) from None
    return folder


def check_output_file(path) -> Path:
    """An output file name whose folder exists and is writable (WriteError naming it if not) and that is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise _write_error(f"cannot write {path}: it is a folder; expected a file name")
    if not path.parent.is_dir():
        raise _write_error(f"cannot write {path}: folder {path.parent} does not exist")
    check_writable_dir(path.parent)
    return path


def _temporary_name(path: Path) -> Path:
    """A fresh hidden name beside `path` that `remove_stale_temporaries` recognises once this process is gone."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def _beside(path: Path, rename: bool) -> Iterator[Path]:
    """A temporary path beside `path` (same extension): renamed to `path` on success when `rename`,
    deleted otherwise; an OSError becomes a WriteError naming `path`."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp = _temporary_name(path)
    try:
        yield tmp
        if rename:
            if not tmp.is_file():
                raise RuntimeError(f"writing {path}: the writer did not create {tmp.name}")
            os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, WriteError):
            raise
        raise _write_error(f"cannot write {path}: {_reason(e, path.parent)}", e) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def scratch_file(path) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same extension) for intermediate data; always deleted afterwards."""
    with _beside(Path(path), rename=False) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_write(path) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same extension); renames to `path` on success, deletes it on failure."""
    path = Path(path)
    if path.parent.is_dir() and path.parent.resolve() not in _swept_dirs:
        _swept_dirs.add(path.parent.resolve())
        remove_stale_temporaries(path.parent)
    with _beside(path, rename=True) as tmp:
        yield tmp
