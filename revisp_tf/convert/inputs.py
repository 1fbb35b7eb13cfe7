"""The inputs of `revisp-tf convert`: files, globs, folders and lists of paths, on any Beam file system."""

from __future__ import annotations

import re
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from revisp_tf.infer.files import expand_inputs, output_name

LIST_SUFFIX = ".txt"
_GLOB = re.compile(r"[*?\[]")


def _listed(list_path: str) -> list[str]:
    """The paths a list file holds, one a line; blank lines and lines starting with # are skipped."""
    try:
        with FileSystems.open(list_path) as f:
            lines = f.read().decode().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{list_path}: cannot read it as a list of paths ({e})") from None
    folder = FileSystems.split(list_path)[0]
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [e if FileSystems.get_scheme(e) or e.startswith("/") else FileSystems.join(folder, e) for e in entries]


def expand(items) -> list[str]:
    """The input files, in the order given; each item is one of:

    - a glob (`*`, `?`, `[...]`, `**` across folders; gs:// and s3:// too): the files it matches, sorted;
    - a `.txt` file: the paths it lists, one a line, relative ones relative to the list's folder.
      They are not checked here (a dataset's list may be long): one that cannot be read goes to
      the dead-letter file like any bad image;
    - a local folder: its JPEG and PNG images, as `infer` takes them;
    - a file, which must exist.
    """
    paths: list[str] = []
    for item in map(str, items):
        local = FileSystems.get_scheme(item) is None
        if _GLOB.search(item):
            [match] = FileSystems.match([item])
            found = sorted(m.path for m in match.metadata_list)
            if not found:
                raise ValueError(f"{item}: no files match")
            paths += found
        elif item.endswith(LIST_SUFFIX):
            paths += _listed(item)
        elif local:
            paths += map(str, expand_inputs([item]))
        elif FileSystems.exists(item):
            paths.append(item)
        else:
            raise ValueError(f"{item}: no such file or folder")
    if not paths:
        raise ValueError("no input images: the lists given are empty")
    return paths


def output_names(paths: list[str], fmt: str) -> dict[str, str]:
    """input -> the name of its output file (as `infer` names it); ValueError where two inputs would share one."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for p in paths:
        name = output_name(Path(p).stem, fmt)
        if name in seen and seen[name] != p:
            raise ValueError(f"{seen[name]} and {p}: both would be written as {name}; convert them into different --out folders")
        seen[name], names[p] = p, name
    return names
