"""Load the native library and check that it speaks our ABI.

The declarations come from ``eventuali.h`` itself - the header installed next
to this module (or ``include/eventuali.h`` in a source checkout) - fed to
``ffi.cdef()`` after stripping what CFFI's parser does not take (preprocessor
lines and the ``EVENTUALI_API`` export marker), as python-zstandard's
make_cffi.py does.  There is no hand-written copy of the ABI to drift.

Policy: ``EVENTUALI_C_LIBRARY=/path/to/lib.so`` loads another library that
implements the header (a third-party engine, or a sanitizer build); otherwise
the library shipped in this package is used.  A library whose
``eventuali_abi_version()`` differs from the header's ``EVENTUALI_ABI_VERSION``
is refused at load with both versions and its path, because calling it
through mismatched declarations would corrupt memory instead of failing.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

from eventuali.errors import BackendUnavailableError

LIBRARY_ENV_VAR = "EVENTUALI_C_LIBRARY"

_HERE = Path(__file__).resolve().parent
_LIB_NAMES = {"linux": "libeventuali.so", "darwin": "libeventuali.dylib", "win32": "eventuali.dll"}


def header_path() -> Path:
    """The installed header, or the repository's when running from a checkout."""
    for candidate in (_HERE / "eventuali.h", _HERE.parents[2] / "include" / "eventuali.h"):
        if candidate.is_file():
            return candidate
    raise BackendUnavailableError(
        f"eventuali.h not found next to {_HERE} nor in the source checkout; reinstall the native "
        "backend with: pip install ./backends/c"
    )


def cdef_source(header_text: str) -> str:
    """The header without preprocessor lines, C++-only blocks and export markers."""
    out: list[str] = []
    continued = False
    cplusplus = False  # inside #ifdef __cplusplus ... #endif (the extern "C" braces)
    for line in header_text.splitlines():
        stripped = line.strip()
        if continued or stripped.startswith("#"):
            continued = stripped.endswith("\\")
            if re.match(r"#\s*ifdef\s+__cplusplus\b", stripped):
                cplusplus = True
            elif cplusplus and re.match(r"#\s*endif\b", stripped):
                cplusplus = False
            continue
        if not cplusplus:
            out.append(line)
    return re.sub(r"\bEVENTUALI_API\b", "", "\n".join(out))


def header_abi_version(header_text: str) -> int:
    m = re.search(r"^#define\s+EVENTUALI_ABI_VERSION\s+(\d+)\s*$", header_text, re.M)
    if m is None:
        raise BackendUnavailableError("eventuali.h does not define EVENTUALI_ABI_VERSION")
    return int(m.group(1))


def library_path() -> tuple[Path, str]:
    """(path, where the path came from)."""
    override = os.environ.get(LIBRARY_ENV_VAR, "").strip()
    if override:
        return Path(override), f"the environment variable {LIBRARY_ENV_VAR}"
    name = _LIB_NAMES.get(sys.platform, "libeventuali.so")
    return _HERE / name, "the eventuali-c package"


def load():
    """(ffi, lib, library path, ABI version); raises BackendUnavailableError with the fix."""
    header = header_path()
    text = header.read_text(encoding="utf-8")
    expected = header_abi_version(text)
    ffi = FFI()
    ffi.cdef(cdef_source(text))
    path, source = library_path()
    if not path.is_file():
        fix = (
            f"point {LIBRARY_ENV_VAR} at an existing library, or unset it"
            if source.startswith("the environment")
            else "reinstall it with: pip install ./backends/c (needs CMake, a C compiler and "
            "libsqlite3-dev)"
        )
        raise BackendUnavailableError(
            f"native eventuali library {str(path)!r} (from {source}) does not exist; {fix}"
        )
    try:
        lib = ffi.dlopen(str(path))
    except OSError as exc:
        raise BackendUnavailableError(
            f"cannot load native eventuali library {str(path)!r} (from {source}): {exc}; "
            "check that it was built for this platform and that libsqlite3 is installed"
        ) from exc
    try:
        actual = int(lib.eventuali_abi_version())
    except AttributeError as exc:
        raise BackendUnavailableError(
            f"{str(path)!r} (from {source}) is not an eventuali native library: it has no "
            "eventuali_abi_version()"
        ) from exc
    if actual != expected:
        raise BackendUnavailableError(
            f"native eventuali library {str(path)!r} (from {source}) implements ABI version "
            f"{actual}, but this eventuali-c speaks ABI version {expected} (header {header}); "
            "rebuild the library from the same eventuali.h, or install the matching eventuali-c"
        )
    return ffi, lib, path, expected
