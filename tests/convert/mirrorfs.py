"""`mirror://PATH`: the local file PATH seen through a Beam file system of its own scheme.

Importing this module registers it with Beam's `FileSystems`, so `convert` takes its object-store
paths (gs://, s3://) for these: uploads instead of renames, staging in a local folder, listing by
`FileSystems.match`, reading inputs and the model through `FileSystems.open`.
"""

from apache_beam.io.filesystem import FileMetadata, FileSystem
from apache_beam.io.localfilesystem import LocalFileSystem

PREFIX = "mirror://"


def _local(path: str) -> str:
    return path[len(PREFIX) :] if path.startswith(PREFIX) else path


def _mirrored(meta: FileMetadata) -> FileMetadata:
    return FileMetadata(PREFIX + meta.path, meta.size_in_bytes, meta.last_updated_in_seconds)


class MirrorFileSystem(FileSystem):
    def __init__(self, pipeline_options):
        super().__init__(pipeline_options)
        self._fs = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls):
        return "mirror"

    def join(self, basepath, *paths):
        return PREFIX + self._fs.join(_local(basepath), *paths)

    def split(self, path):
        head, tail = self._fs.split(_local(path))
        return PREFIX + head, tail

    def mkdirs(self, path):
        self._fs.mkdirs(_local(path))

    def has_dirs(self):
        return True

    def _list(self, dir_or_prefix):
        return map(_mirrored, self._fs._list(_local(dir_or_prefix)))

    def create(self, path, *args, **kwargs):
        return self._fs.create(_local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return self._fs.open(_local(path), *args, **kwargs)

    def copy(self, source_file_names, destination_file_names):
        self._fs.copy(list(map(_local, source_file_names)), list(map(_local, destination_file_names)))

    def rename(self, source_file_names, destination_file_names):
        self._fs.rename(list(map(_local, source_file_names)), list(map(_local, destination_file_names)))

    def exists(self, path):
        return self._fs.exists(_local(path))

    def size(self, path):
        return self._fs.size(_local(path))

    def last_updated(self, path):
        return self._fs.last_updated(_local(path))

    def checksum(self, path):
        return self._fs.checksum(_local(path))

    def metadata(self, path):
        return _mirrored(self._fs.metadata(_local(path)))

    def delete(self, paths):
        self._fs.delete(list(map(_local, paths)))
