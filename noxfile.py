"""Developer and CI sessions: tests, lint, types, bench (and the native engine's checks).

``nox -s tests`` is the test command of the README and of CI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

# The native engine's sessions (c_tests, c_asan, c_valgrind, c_fuzz) live in
# noxfile_c.py; importing them here makes ``nox -s c_asan`` work from the root
# (nox does not put the noxfile's folder on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from noxfile_c import c_asan, c_fuzz, c_tests, c_valgrind  # noqa: E402,F401
from noxfile_wheels import build, wheel_tests  # noqa: E402,F401

ROOT = Path(__file__).parent
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


def install_native(session: nox.Session) -> None:
    """The C engine, built with CMake through scikit-build-core (needs a C compiler).

    cmake from PyPI also goes into the session: the ABI-mismatch test builds a
    second library with it.
    """
    session.install("cmake>=3.18")
    session.install("./backends/c")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test: core, conformance on every installed (backend, scheme), features."""
    session.install("-e", ".[test,bench]")
    install_native(session)
    session.run("eventuali", "backends")
    session.run("pytest", "-q", "-ra", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "eventuali", "backends/python", "backends/c/eventuali_c", "tests", "tools",
                "bench", "noxfile.py", "noxfile_c.py")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy", "eventuali", "backends/python/eventuali_python", "backends/c/eventuali_c")


@nox.session(python=False)
def gen(session: nox.Session) -> None:
    """Regenerate the sync modules written from their async source (tools/async_to_sync.py).

    ``nox -s gen -- --check`` only reports stale files; tests/packaging/test_generated.py
    fails in CI when one is stale.
    """
    session.run(sys.executable, "tools/async_to_sync.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Measure (never in CI): every bench script, then bench/report.py.

    ``nox -s bench -- [--quick] [--postgres URL]`` writes bench/results.md and
    bench/results.png.
    """
    session.install("-e", ".[bench]")
    install_native(session)
    session.run("bash", "bench/run_all.sh", *session.posargs, external=True,
                env={"PYTHON": "python"})
