"""The output folder of `revisp-tf convert`: its layout, and atomic writes into it on any Beam file system.

    DIR/NAME.npy | NAME.dng            one RAW file per input (the name `infer` gives it)
    DIR/records-HASH.tfrecord          --format tfrecord: shards of records (`convert.tfrecord`)
    DIR/manifest.jsonl                 one JSON line per converted input (rebuilt at the end of each run)
    DIR/dead_letter.txt                the inputs of the last run that could not be read, one message a line
    DIR/.convert/settings.json         model sha256, format, sensor, tile, overlap, metadata of the folder
    DIR/.convert/done/OUTPUT.json      the manifest line(s) of one output file: the resume state
    DIR/.convert/failed/KEY.txt        a failed input of the running run (progress counts them)
    DIR/.convert/staging/              outputs being written (local DIR)
    DIR/.convert/todo.txt              the running run's inputs, one a line
    DIR/.convert/beam.log              what Beam and its workers logged in the last run

An output is committed in two atomic steps: its manifest fragment `done/OUTPUT.json`, then the
output itself (a rename into DIR; on gs:// or s3:// an upload, whose object appears only once
complete). A fragment counts only while its output exists, so a run killed between the two
steps redoes that input and writes its output once; a finished output is never written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from revisp_tf.io.atomic import atomic_write

MANIFEST = "manifest.jsonl"
DEAD_LETTER = "dead_letter.txt"
_STATE = ".convert"
_FRAGMENT = ".json"


class Store:
    """The output folder `root` (a local path, or a gs:// / s3:// prefix Beam's FileSystems knows)."""

    def __init__(self, root: str):
        self.root = str(root).rstrip("/") or "/"
        self.local = FileSystems.get_scheme(self.root) is None
        self._scratch = None  # a worker's local folder for the outputs it writes before uploading them

    def path(self, *parts: str) -> str:
        return FileSystems.join(self.root, *parts)

    def state(self, *parts: str) -> str:
        return self.path(_STATE, *parts)

    @property
    def settings(self) -> str:
        return self.state("settings.json")

    @property
    def todo(self) -> str:
        return self.state("todo.txt")

    @property
    def log(self) -> str:
        return self.state("beam.log")

    def fragment(self, output: str) -> str:
        """The manifest fragment of output file `output` (a name in DIR)."""
        return self.state("done", output + _FRAGMENT)

    def failure(self, input_path: str) -> str:
        return self.state("failed", hashlib.sha256(input_path.encode()).hexdigest()[:20] + ".txt")

    def make_dirs(self) -> None:
        """The state folders (object stores have none to make)."""
        if self.local:
            for sub in ("done", "failed", "staging"):
                os.makedirs(self.state(sub), exist_ok=True)

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def listing(self, folder: str, suffix: str = "") -> dict[str, float]:
        """Names of the files directly in `folder` ending in `suffix` -> their modification time (seconds)."""
        if self.local:  # Beam's local match walks the whole tree below the folder
            with os.scandir(folder) if os.path.isdir(folder) else contextlib.nullcontext([]) as entries:
                return {e.name: e.stat().st_mtime for e in entries if e.is_file() and e.name.endswith(suffix)}
        [match] = FileSystems.match([FileSystems.join(folder, "*" + suffix)])
        return {FileSystems.split(m.path)[1]: m.last_updated_in_seconds for m in match.metadata_list}

    def read_text(self, path: str) -> str:
        with FileSystems.open(path) as f:
            return f.read().decode()

    def write_text(self, path: str, text: str) -> None:
        """Writes `text` to `path` atomically (a temporary name renamed locally; an object upload elsewhere)."""
        if self.local:
            with atomic_write(path) as tmp:
                Path(tmp).write_text(text)
            return
        with FileSystems.create(path) as f:
            f.write(text.encode())

    def delete(self, paths: list[str]) -> None:
        if paths:
            FileSystems.delete(paths)

    def staging(self, name: str) -> Path:
        """A local path to write output `name` to before `publish` moves it into DIR."""
        if self.local:
            return Path(self.state("staging", name))
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="revisp-convert-")
        return Path(self._scratch) / name

    def remove_scratch(self) -> None:
        """Removes this worker's local folder of staged outputs (a remote DIR's), once it is done."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def publish(self, staged: Path, name: str) -> str:
        """Moves a staged output into DIR as `name` (atomic); returns its path."""
        target = self.path(name)
        if self.local:
            os.replace(staged, target)
            return target
        with open(staged, "rb") as src, FileSystems.create(target) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        staged.unlink()
        return target

    def committed(self) -> list[str]:
        """The output files of DIR whose manifest fragment exists: what a rerun skips."""
        outputs = set(self.listing(self.root))
        return sorted(f[: -len(_FRAGMENT)] for f in self.listing(self.state("done"), _FRAGMENT) if f[: -len(_FRAGMENT)] in outputs)

    def manifest_lines(self, output: str) -> list[dict]:
        """The manifest entries in the fragment of `output`."""
        return [json.loads(line) for line in self.read_text(self.fragment(output)).splitlines() if line]
