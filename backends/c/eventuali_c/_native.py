"""The loaded library: ``ffi``, ``lib``, its path and ABI version (loaded once, at import).

Importing this module fails with ``BackendUnavailableError`` (saying why and
how to fix it) when the library is missing, broken or of another ABI version,
which is how the registry learns that the ``c`` backend cannot load.
"""

from __future__ import annotations

from . import _abi

ffi, lib, library_path, abi_version = _abi.load()
