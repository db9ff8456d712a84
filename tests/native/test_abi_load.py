"""Loading the library: the real header fed to CFFI, the ABI version check, EVENTUALI_C_LIBRARY."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "eventuali.h"


def test_cdef_comes_from_the_header_itself(native):
    from eventuali_c import _abi

    text = _abi.header_path().read_text()
    assert text == HEADER.read_text(), "the installed header differs from include/eventuali.h"
    source = _abi.cdef_source(text)
    assert not any(line.lstrip().startswith("#") for line in source.splitlines())
    assert "EVENTUALI_API" not in source and 'extern "C"' not in source
    # every function the header declares is callable through the loaded library
    declared = set(re.findall(r"\b(eventuali_[a-z_]+)\s*\(", source))
    assert {"eventuali_open", "eventuali_append", "eventuali_read_all", "eventuali_abi_version"} <= declared
    for name in declared:
        assert callable(getattr(native.lib, name)), name
    assert native.lib.eventuali_abi_version() == _abi.header_abi_version(text) == native.abi_version


def test_describe_names_abi_library_and_schemes(c_provider, native):
    info = c_provider.describe()
    assert info["abi version"] == native.abi_version
    assert Path(info["library"]).is_file()
    assert info["schemes"] == "memory, sqlite"
    assert c_provider.priority > 0  # auto prefers c over python (priority 0)


def _import_with_library(path: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, EVENTUALI_C_LIBRARY=path)
    return subprocess.run(
        [sys.executable, "-c", "import eventuali_c"], env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_library_is_refused_with_the_path_and_the_fix(c_provider, tmp_path):
    missing = tmp_path / "nope.so"
    proc = _import_with_library(str(missing))
    assert proc.returncode != 0
    assert "BackendUnavailableError" in proc.stderr
    assert str(missing) in proc.stderr and "EVENTUALI_C_LIBRARY" in proc.stderr


def test_library_of_another_abi_version_is_refused(c_provider, native, tmp_path):
    """Build the library claiming ABI version N+1: loading it must fail, naming both versions."""
    if shutil.which("cmake") is None:
        if os.environ.get("EVENTUALI_REQUIRE_C") == "1":
            pytest.fail("EVENTUALI_REQUIRE_C=1 but cmake is not on PATH to build the mismatched library")
        pytest.skip("needs cmake to build a library of another ABI version")
    build = tmp_path / "build"
    other = native.abi_version + 1
    # the compiler must not inherit a sanitizer runtime preloaded into this run (c_asan)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    subprocess.run(
        ["cmake", "-S", str(ROOT / "backends" / "c"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug",
         f"-DEVENTUALI_ABI_VERSION_OVERRIDE={other}"],
        check=True, capture_output=True, timeout=300, env=env,
    )
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, timeout=600, env=env)
    lib = next(build.glob("libeventuali.*"))
    proc = _import_with_library(str(lib))
    assert proc.returncode != 0
    err = proc.stderr
    assert "BackendUnavailableError" in err
    assert f"implements ABI version {other}" in err
    assert f"speaks ABI version {native.abi_version}" in err
    assert str(lib) in err


def test_explicit_c_for_an_unserved_scheme_says_why(c_provider, monkeypatch):
    from eventuali import registry
    from eventuali.errors import UnknownSchemeError
    from eventuali.url import parse_url

    monkeypatch.setenv("EVENTUALI_BACKEND", "c")
    with pytest.raises(UnknownSchemeError, match="does not serve scheme 'postgresql'"):
        registry.choose(parse_url("postgresql://u@localhost/db"))


def test_auto_prefers_c(c_provider, monkeypatch):
    from eventuali import registry
    from eventuali.url import parse_url

    monkeypatch.delenv("EVENTUALI_BACKEND", raising=False)
    assert registry.choose(parse_url("memory://")).name == "c"
    assert registry.choose(parse_url("sqlite://x.db")).name == "c"
