"""The installed eventuali's version, read from its metadata (the repository's VERSION file).

VERSION is the one source: the ``eventuali`` and ``eventuali-c`` distributions
and the C library all take their version from it at build time, so nothing
here may hard-code one.  A checkout used without installing falls back to the
file itself.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version() -> str:
    try:
        return version("eventuali")
    except PackageNotFoundError:
        return (Path(__file__).resolve().parents[1] / "VERSION").read_text(encoding="utf-8").strip()


__version__ = _version()
