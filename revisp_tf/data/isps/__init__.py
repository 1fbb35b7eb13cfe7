"""Real ISPs that render a RAW frame to uint8 sRGB on the canonical mosaic grid.

Every ISP module (libraw, darktable, rawtherapee, infinite_isp) defines one class that satisfies `Isp`.
Building one whose command line tool is missing raises FileNotFoundError naming the Debian package
(Infinite-ISP: the environment variable naming its checkout, or the extra with its dependencies).

`get_isp(name, profile=...)` builds one. The modules load lazily, so the name list is cheap to import.
"""

from __future__ import annotations

from typing import Protocol

ISPS = ("libraw", "darktable", "rawtherapee", "infinite-isp")
PROFILED = ("rawtherapee", "infinite-isp")  # the ISPs that take a profile


class Isp(Protocol):
    """The interface of a real ISP (a structural type: each ISP class has these members)."""

    name: str  # one of ISPS
    jpeg_quality: int  # the quality make-pairs writes its RGB at, as JPEG

    def render(self, frame):
        """The `common.Render` of a `raw_files.RawFrame`: the RGB, where it lies on the canonical mosaic, the gains it applied."""

    def settings(self) -> dict:
        """Version and settings, for meta.json."""

    def describe(self, frame) -> dict:
        """meta.json's "isp" and "color_matrix_used" for a scene."""


def get_isp(name: str, *, profile: str | None = None) -> Isp:
    """The ISP called `name`; `profile` is rawtherapee's (a bundled profile name or a .pp3 path) or infinite-isp's (its config .yml)."""
    if name not in ISPS:
        raise ValueError(f"isp: expected one of {', '.join(ISPS)}, got {name!r}")
    if profile is not None and name not in PROFILED:
        raise ValueError(f"profile: only the {' and '.join(PROFILED)} ISPs take a profile, got one for {name}")
    if name == "libraw":
        from revisp_tf.data.isps.libraw import LibRaw

        return LibRaw()
    if name == "darktable":
        from revisp_tf.data.isps.darktable import Darktable

        return Darktable()
    if name == "infinite-isp":
        from revisp_tf.data.isps.infinite_isp import InfiniteIsp

        return InfiniteIsp(profile)
    from revisp_tf.data.isps.rawtherapee import RawTherapee

    return RawTherapee(profile)
