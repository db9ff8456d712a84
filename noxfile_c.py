"""nox sessions for the native engine (backends/c): tests, sanitizers, valgrind, fuzzing.

Kept apart from noxfile.py so it can be merged as a block (or imported from
it: ``from noxfile_c import *``).  Run with ``nox -f noxfile_c.py -s <name>``.

System packages: a C compiler, libsqlite3-dev, libssl-dev, valgrind, clang (libFuzzer);
on Debian: apt-get install -y build-essential libsqlite3-dev libssl-dev valgrind clang.

- ``c_tests``: install eventuali-c, run the conformance suite and the native
  tests with ``EVENTUALI_REQUIRE_C=1`` (a c backend that fails to build or load
  fails the run).
- ``c_asan``: build the library with -fsanitize=address,undefined, load it
  through ``EVENTUALI_C_LIBRARY`` with libasan preloaded into Python, run the
  same tests; any report aborts the run.
- ``c_valgrind``: run the C driver (tools/driver.c) under valgrind: zero
  errors, zero definite leaks.
- ``c_fuzz``: build the libFuzzer targets with clang and run each for
  ``EVENTUALI_FUZZ_SECONDS`` (default 20 s each, 60 s in all).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
C_DIR = ROOT / "backends" / "c"
TESTS = ["tests/conformance", "tests/native"]


def _install(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.install("cmake>=3.18")
    session.install(str(C_DIR))


def _cmake_build(session: nox.Session, build: Path, *options: str, env: dict | None = None) -> None:
    session.run("cmake", "-S", str(C_DIR), "-B", str(build), *options, env=env)
    session.run("cmake", "--build", str(build), "--parallel", "2", env=env)


def _runtime(session: nox.Session, name: str, compiler: str = "gcc") -> str:
    path = subprocess.run(
        [compiler, f"-print-file-name={name}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not os.path.isabs(path):
        session.error(f"{compiler} does not know {name}; install the compiler's sanitizer runtime")
    return path


@nox.session
def c_tests(session: nox.Session) -> None:
    """Conformance + native tests on the installed c backend (must load)."""
    _install(session)
    session.run("pytest", *TESTS, "-q", *session.posargs, env={"EVENTUALI_REQUIRE_C": "1"})


@nox.session
def c_asan(session: nox.Session) -> None:
    """The same tests against an AddressSanitizer + UBSan build of the library."""
    _install(session)
    build = Path(tempfile.mkdtemp(prefix="eventuali-asan-"))
    _cmake_build(session, build, "-DCMAKE_BUILD_TYPE=Debug", "-DEVENTUALI_SANITIZE=ON")
    lib = next(build.glob("libeventuali.*"))
    env = {
        "EVENTUALI_REQUIRE_C": "1",
        "EVENTUALI_C_LIBRARY": str(lib),
        # Python itself is not instrumented: the runtime must be loaded first.
        "LD_PRELOAD": _runtime(session, "libasan.so"),
        # CPython's own allocations look like leaks to LeakSanitizer; leaks in
        # the library are valgrind's job (c_valgrind).
        "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=1:strict_string_checks=1",
        "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_stacktrace=1",
        "PYTHONMALLOC": "malloc",
    }
    session.run("pytest", *TESTS, "-q", "-p", "no:cacheprovider", *session.posargs, env=env)


@nox.session
def c_valgrind(session: nox.Session) -> None:
    """The C driver under valgrind: no errors, no definite leaks."""
    session.install("cmake>=3.18")
    if shutil.which("valgrind") is None:
        session.error("valgrind is not installed: apt-get install -y valgrind")
    build = Path(tempfile.mkdtemp(prefix="eventuali-valgrind-"))
    _cmake_build(session, build, "-DCMAKE_BUILD_TYPE=Debug", "-DEVENTUALI_DRIVER=ON")
    db = build / "driver.db"
    session.run(
        "valgrind", "-q", "--error-exitcode=3", "--leak-check=full",
        "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
        str(build / "eventuali_driver"), str(db), external=True,
    )


@nox.session
def c_fuzz(session: nox.Session) -> None:
    """Every buffer-parsing call under libFuzzer (+ASan/UBSan) for a bounded time."""
    session.install("cmake>=3.18")
    if shutil.which("clang") is None:
        session.error("clang is not installed: apt-get install -y clang")
    seconds = int(os.environ.get("EVENTUALI_FUZZ_SECONDS", "20"))
    build = Path(tempfile.mkdtemp(prefix="eventuali-fuzz-"))
    _cmake_build(
        session, build, "-DCMAKE_BUILD_TYPE=Debug", "-DEVENTUALI_FUZZ=ON",
        "-DCMAKE_C_COMPILER=clang",
    )
    for target in ("append", "filter", "args"):
        corpus = build / f"corpus-{target}"
        corpus.mkdir(exist_ok=True)
        session.run(
            str(build / f"fuzz_{target}"), f"-max_total_time={seconds}", "-print_final_stats=1",
            f"-artifact_prefix={build}/crash-{target}-", str(corpus), external=True,
            env={"ASAN_OPTIONS": "halt_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"},
        )
